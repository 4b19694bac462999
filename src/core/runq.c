#include "runq.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

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

static int resize(ua_runq *q, size_t want)
{
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

int ua_runq_reserve(ua_runq *q, size_t cap)
{
    size_t want = 16;
    while (want < cap)
        want *= 2;
    return want <= q->cap ? 0 : resize(q, want);
}

void ua_runq_shrink(ua_runq *q)
{
    size_t want = q->cap;
    while (want > 16 && q->len * 4 <= want / 2)
        want /= 2;
    if (want < q->cap && resize(q, want) == 0) {
#ifdef __GLIBC__
        malloc_trim(0);   /* hand the freed burst memory back to the kernel */
#endif
    }
}
