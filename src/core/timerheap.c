#include "timerheap.h"
#include "ticks.h"

#include <stdlib.h>

#define earlier ua_timer_earlier

static inline void place(ua_timerheap *h, uint32_t i, ua_timer *t)
{
    h->nodes[i] = t;
    t->index = i;
}

static void sift_up(ua_timerheap *h, uint32_t i, ua_timer *t)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!earlier(t, h->nodes[parent]))
            break;
        place(h, i, h->nodes[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(ua_timerheap *h, uint32_t i, ua_timer *t)
{
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->len)
            break;
        if (child + 1 < h->len && earlier(h->nodes[child + 1], h->nodes[child]))
            child++;
        if (!earlier(h->nodes[child], t))
            break;
        place(h, i, h->nodes[child]);
        i = child;
    }
    place(h, i, t);
}

void ua_timerheap_init(ua_timerheap *h)
{
    h->nodes = NULL;
    h->len = h->cap = 0;
    h->next_seq = 0;
}

void ua_timerheap_free(ua_timerheap *h)
{
    free(h->nodes);
    ua_timerheap_init(h);
}

int ua_timerheap_push(ua_timerheap *h, ua_timer *t)
{
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? h->cap * 2 : 16;
        if (cap < h->cap)
            return -1;
        ua_timer **nodes = realloc(h->nodes, (size_t)cap * sizeof(*nodes));
        if (!nodes)
            return -1;
        h->nodes = nodes;
        h->cap = cap;
    }
    t->seq = h->next_seq++;
    sift_up(h, h->len++, t);
    return 0;
}

ua_timer *ua_timerheap_pop(ua_timerheap *h)
{
    if (!h->len)
        return NULL;
    ua_timer *top = h->nodes[0];
    ua_timerheap_remove(h, top);
    return top;
}

void ua_timerheap_remove(ua_timerheap *h, ua_timer *t)
{
    uint32_t i = t->index;
    ua_timer *last = h->nodes[--h->len];
    if (last == t)
        return;
    /* Put the last node in the hole and restore order in whichever
     * direction it is out of place. */
    if (i > 0 && earlier(last, h->nodes[(i - 1) / 2]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}
