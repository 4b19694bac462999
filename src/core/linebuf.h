/* A byte buffer for stream reads: data is appended at the end (by recv()
 * straight into it) and consumed from the front; lines are found with a scan
 * that never looks at the same byte twice, so reading a line of n bytes in
 * many chunks costs O(n), not O(n^2). */
#ifndef UA_LINEBUF_H
#define UA_LINEBUF_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ua_linebuf {
    char *data;
    size_t start;     /* first unconsumed byte */
    size_t end;       /* one past the last byte */
    size_t cap;
    size_t scanned;   /* bytes from start known to hold no '\n' */
} ua_linebuf;

void ua_linebuf_init(ua_linebuf *b);
void ua_linebuf_free(ua_linebuf *b);

static inline size_t ua_linebuf_len(const ua_linebuf *b) { return b->end - b->start; }
static inline const char *ua_linebuf_peek(const ua_linebuf *b) { return b->data + b->start; }

/* Room for at least want more bytes at the end (moving or growing the
 * data); returns where to write and the room in *room, or NULL on no memory. */
char *ua_linebuf_space(ua_linebuf *b, size_t want, size_t *room);

/* Copy n bytes to the end: 0, or -1 on no memory (nothing appended). */
int ua_linebuf_append(ua_linebuf *b, const void *p, size_t n);

/* n bytes were written at the end. */
void ua_linebuf_commit(ua_linebuf *b, size_t n);

/* Drop n bytes from the front. An emptied buffer is released, so an idle
 * connection holds none. */
void ua_linebuf_consume(ua_linebuf *b, size_t n);

/* Length of the first line including its '\n', or -1 if there is none yet. */
ssize_t ua_linebuf_find_line(ua_linebuf *b);

#endif
