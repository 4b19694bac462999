#include "runq.h"

#include <stdlib.h>

void ua_runq_init(ua_runq *q)
{
    q->items = NULL;
    q->head = q->len = q->cap = 0;
}

void ua_runq_free(ua_runq *q)
{
    free(q->items);
    ua_runq_init(q);
}

int ua_runq_reserve(ua_runq *q, size_t cap)
{
    size_t want = 16;
    while (want < cap)
        want *= 2;
    if (want <= q->cap)
        return 0;
    void **items = malloc(want * sizeof(*items));
    if (!items)
        return -1;
    /* Unroll the ring into the new array, head first. */
    for (size_t i = 0; i < q->len; i++)
        items[i] = q->items[(q->head + i) & (q->cap - 1)];
    free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = want;
    return 0;
}
