/* A byte buffer for stream reads: data is appended at the end (by recv()
 * straight into it) and consumed from the front; lines are found with a scan
 * that never looks at the same byte twice, so reading a line of n bytes in
 * many chunks costs O(n), not O(n^2).
 *
 * The storage grows in place (realloc: large blocks are remapped, not
 * copied) and can be handed over whole (ua_linebuf_detach), so a line of L
 * bytes costs about L of memory, never 2L. Where the storage comes from is
 * the owner's choice (ua_linebuf_mem): the Python binding keeps it inside a
 * bytes object, which it then returns without copying. */
#ifndef UA_LINEBUF_H
#define UA_LINEBUF_H

#include <stddef.h>
#include <sys/types.h>

/* Like realloc: p NULL allocates, n 0 frees (and returns NULL). Unlike it,
 * a failure releases p too (as _PyBytes_Resize does): a buffer that cannot
 * grow loses what it held and is left empty. */
typedef void *(*ua_linebuf_resize)(void *p, size_t n);

/* The size of a buffer's first block (then doubled as needed). */
#define UA_LINEBUF_FIRST_CAP 4096

typedef struct ua_linebuf {
    char *data;
    size_t start;     /* first unconsumed byte */
    size_t end;       /* one past the last byte */
    size_t cap;
    size_t scanned;   /* bytes from start known to hold no '\n' */
    ua_linebuf_resize mem;   /* NULL: malloc/realloc/free */
} ua_linebuf;

/* An empty buffer with libc's allocator; set b->mem afterwards for another. */
void ua_linebuf_init(ua_linebuf *b);
/* Releases the storage; the buffer is empty (and keeps its allocator). */
void ua_linebuf_free(ua_linebuf *b);

static inline size_t ua_linebuf_len(const ua_linebuf *b) { return b->end - b->start; }
static inline const char *ua_linebuf_peek(const ua_linebuf *b) { return b->data + b->start; }

/* Room for at least want more bytes at the end (moving the data to the
 * front, or growing the storage); returns where to write and the room in
 * *room, or NULL: for a size that cannot be, with nothing changed; on no
 * memory, with the buffer emptied (see ua_linebuf_resize). */
char *ua_linebuf_space(ua_linebuf *b, size_t want, size_t *room);

/* Copy n bytes to the end: 0, or -1 on no memory (nothing appended). */
int ua_linebuf_append(ua_linebuf *b, const void *p, size_t n);

/* n bytes were written at the end. */
void ua_linebuf_commit(ua_linebuf *b, size_t n);

/* Drop n bytes from the front (all of them if n is more). An emptied buffer
 * is released, so an idle connection holds none. */
void ua_linebuf_consume(ua_linebuf *b, size_t n);

/* Length of the first line including its '\n', or -1 if there is none yet. */
ssize_t ua_linebuf_find_line(ua_linebuf *b);

/* Hands the storage over with the first n buffered bytes (n <= len) at its
 * start: the caller owns the returned block (release it with b->mem, or
 * free() if NULL; shrinking it to n is the caller's affair), and the buffer
 * keeps the bytes after those n in a new block of its own (copied; none if
 * there are none). Costs O(len - n), plus O(n) if the data did not start at
 * the front. NULL on no memory, with nothing changed. *cap: the block's size. */
char *ua_linebuf_detach(ua_linebuf *b, size_t n, size_t *cap);

/* Takes a block (from ua_linebuf_detach of a buffer with the same
 * allocator) as the storage, holding the bytes [start, end) of its cap;
 * what the buffer held is released. O(1). */
void ua_linebuf_adopt(ua_linebuf *b, char *block, size_t cap, size_t start, size_t end);

#endif
