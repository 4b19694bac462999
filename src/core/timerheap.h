/* Timer queue: an intrusive binary min-heap of deadlines.
 *
 * The caller embeds a ua_timer in its own record; the heap stores pointers to
 * those nodes and keeps each node's slot index in it, so removal of any node
 * (immediate cancellation) is O(log n) with no search and no tombstone.
 *
 * Order: earliest deadline first, compared wrap-safely with ua_ticks_diff();
 * equal deadlines fire in the order they were pushed (a sequence number,
 * compared the same wrap-safe way). The heap itself allocates only when its
 * pointer array grows (doubling), never per push in steady state. */
#ifndef UA_TIMERHEAP_H
#define UA_TIMERHEAP_H

#include <stddef.h>
#include <stdint.h>

#include "ticks.h"

typedef struct ua_timer {
    uint32_t deadline;  /* ticks */
    uint32_t seq;       /* push order, for FIFO among equal deadlines */
    uint32_t index;     /* slot in the heap array while queued */
} ua_timer;

typedef struct ua_timerheap {
    ua_timer **nodes;
    uint32_t len;
    uint32_t cap;
    uint32_t next_seq;
} ua_timerheap;

/* a is ordered before b: earlier deadline, then pushed first (wrap-safe). */
static inline int ua_timer_earlier(const ua_timer *a, const ua_timer *b)
{
    int32_t d = ua_ticks_diff(a->deadline, b->deadline);
    if (d != 0)
        return d < 0;
    return (int32_t)(a->seq - b->seq) < 0;
}

void ua_timerheap_init(ua_timerheap *h);
void ua_timerheap_free(ua_timerheap *h);   /* frees the array, not the nodes */

/* O(log n). Returns 0, or -1 if the array could not grow (node not queued). */
int ua_timerheap_push(ua_timerheap *h, ua_timer *t);

/* O(1). The earliest node, or NULL if empty. */
static inline ua_timer *ua_timerheap_peek(const ua_timerheap *h)
{
    return h->len ? h->nodes[0] : NULL;
}

/* O(log n). Removes and returns the earliest node, or NULL if empty. */
ua_timer *ua_timerheap_pop(ua_timerheap *h);

/* O(log n). Removes a node that is in the heap. */
void ua_timerheap_remove(ua_timerheap *h, ua_timer *t);

#endif
