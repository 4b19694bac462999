/* Run queue: a FIFO ring of pointers that doubles when full, so it never
 * overflows (uasyncio 2.0's fixed deque raised "queue overflow"). */
#ifndef UA_RUNQ_H
#define UA_RUNQ_H

#include <stddef.h>

typedef struct ua_runq {
    void **items;
    size_t head;   /* index of the first item */
    size_t len;
    size_t cap;    /* a power of two, or 0 */
} ua_runq;

void ua_runq_init(ua_runq *q);
void ua_runq_free(ua_runq *q);              /* frees the ring, not the items */
int ua_runq_reserve(ua_runq *q, size_t cap); /* 0, or -1 on no memory */
/* Halve the ring while it stays at most a quarter full (never below 16). */
void ua_runq_shrink(ua_runq *q);

/* O(1) amortized. 0, or -1 on no memory (item not queued). */
static inline int ua_runq_push(ua_runq *q, void *item)
{
    if (q->len == q->cap && ua_runq_reserve(q, q->cap ? q->cap * 2 : 16) < 0)
        return -1;
    q->items[(q->head + q->len++) & (q->cap - 1)] = item;
    return 0;
}

/* O(1) amortized. item becomes the first (to give one back). */
static inline int ua_runq_push_front(ua_runq *q, void *item)
{
    if (q->len == q->cap && ua_runq_reserve(q, q->cap ? q->cap * 2 : 16) < 0)
        return -1;
    q->head = (q->head - 1) & (q->cap - 1);
    q->items[q->head] = item;
    q->len++;
    return 0;
}

/* O(1). The first item, removed; the queue must not be empty. */
static inline void *ua_runq_pop(ua_runq *q)
{
    void *item = q->items[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return item;
}

/* The i-th item from the head, 0 <= i < len (for walking the queue). */
static inline void *ua_runq_at(const ua_runq *q, size_t i)
{
    return q->items[(q->head + i) & (q->cap - 1)];
}

#endif
