/* Unit tests of runq.h / runq.c: the growing FIFO ring of pointers. */
#include "check.h"
#include "runq.h"

#include <stdint.h>

/* Items are small integers dressed as pointers; never dereferenced. */
#define ITEM(n) ((void *)(uintptr_t)((n) + 1))
#define NUM(p) ((long)(uintptr_t)(p) - 1)

static int is_pow2(size_t n)
{
    return n && !(n & (n - 1));
}

static void test_init_is_empty(void)
{
    ua_runq q;
    ua_runq_init(&q);
    CHECK_EQ(q.len, 0);
    CHECK_EQ(q.cap, 0);
    CHECK(q.items == NULL);
    ua_runq_free(&q);
}

static void test_fifo_order(void)
{
    ua_runq q;
    ua_runq_init(&q);
    int ok = 1;
    for (int i = 0; i < 1000 && ok; i++)
        ok = CHECK_EQ(ua_runq_push(&q, ITEM(i)), 0);
    CHECK_EQ(q.len, 1000);
    CHECK(is_pow2(q.cap) && q.cap >= 1000);
    for (int i = 0; i < 1000 && ok; i++)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), i);
    CHECK_EQ(q.len, 0);
    ua_runq_free(&q);
}

static void test_first_push_allocates_16(void)
{
    ua_runq q;
    ua_runq_init(&q);
    CHECK_EQ(ua_runq_push(&q, ITEM(7)), 0);
    CHECK_EQ(q.cap, 16);
    CHECK_EQ(NUM(ua_runq_pop(&q)), 7);
    ua_runq_free(&q);
}

/* Fills a 16-slot ring whose head sits at `head`, then pushes past it. */
static int grow_with_head_at(size_t head)
{
    ua_runq q;
    ua_runq_init(&q);
    int ok = 1;
    long next_in = 0, next_out = 0;
    /* Move the head one step at a time, so the ring stays at 16 slots. */
    for (size_t i = 0; i < head; i++) {
        ua_runq_push(&q, ITEM(next_in++));
        ok = ok && CHECK_EQ(NUM(ua_runq_pop(&q)), next_out++);
    }
    ok = ok && CHECK_EQ(q.head, head % 16);
    /* Fill the ring: it now wraps around the end of the array. */
    while (q.len < 16)
        ua_runq_push(&q, ITEM(next_in++));
    ok = ok && CHECK_EQ(q.cap, 16);
    /* One more: it doubles and must keep the wrapped order. */
    for (int i = 0; i < 20; i++)
        ok = ok && CHECK_EQ(ua_runq_push(&q, ITEM(next_in++)), 0);
    ok = ok && CHECK_EQ(q.cap, 64) && CHECK_EQ(q.len, 36);
    for (size_t i = 0; i < q.len; i++)
        ok = ok && CHECK_EQ(NUM(ua_runq_at(&q, i)), next_out + (long)i);
    while (ok && q.len)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), next_out++);
    ok = ok && CHECK_EQ(next_out, next_in);
    ua_runq_free(&q);
    return ok;
}

static void test_growth_while_ring_is_wrapped(void)
{
    /* Every head position of the 16-slot ring, twice round. */
    for (size_t head = 0; head < 32; head++)
        if (!grow_with_head_at(head))
            break;
}

static void test_at_walks_from_head_when_wrapped(void)
{
    ua_runq q;
    ua_runq_init(&q);
    for (int i = 0; i < 12; i++)
        ua_runq_push(&q, ITEM(i));
    for (int i = 0; i < 12; i++)
        ua_runq_pop(&q);
    for (int i = 100; i < 110; i++)
        ua_runq_push(&q, ITEM(i));
    CHECK_EQ(q.head, 12);
    CHECK_EQ(q.cap, 16);   /* so items 4.. sit at the array's start */
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ(NUM(ua_runq_at(&q, i)), 100 + (long)i);
    /* Walking does not consume. */
    CHECK_EQ(q.len, 10);
    CHECK_EQ(NUM(ua_runq_pop(&q)), 100);
    CHECK_EQ(NUM(ua_runq_at(&q, 0)), 101);
    ua_runq_free(&q);
}

static void test_reserve(void)
{
    ua_runq q;
    ua_runq_init(&q);
    /* On an empty queue: at least 16, rounded up to a power of two. */
    CHECK_EQ(ua_runq_reserve(&q, 0), 0);
    CHECK_EQ(q.cap, 16);
    CHECK_EQ(ua_runq_reserve(&q, 100), 0);
    CHECK_EQ(q.cap, 128);
    CHECK_EQ(ua_runq_reserve(&q, 128), 0);
    CHECK_EQ(q.cap, 128);

    /* Never shrinks, never moves the array when it already fits. */
    void **items = q.items;
    CHECK_EQ(ua_runq_reserve(&q, 5), 0);
    CHECK_EQ(q.cap, 128);
    CHECK(q.items == items);

    /* Reserved room is used without growing again. */
    for (int i = 0; i < 128; i++)
        ua_runq_push(&q, ITEM(i));
    CHECK_EQ(q.cap, 128);
    CHECK(q.items == items);

    /* Reserving on a wrapped ring unrolls it: head back at 0, order kept. */
    for (int i = 0; i < 100; i++)
        ua_runq_pop(&q);
    for (int i = 128; i < 200; i++)
        ua_runq_push(&q, ITEM(i));
    CHECK_EQ(q.head, 100);
    CHECK_EQ(ua_runq_reserve(&q, 129), 0);
    CHECK_EQ(q.cap, 256);
    CHECK_EQ(q.head, 0);
    CHECK_EQ(q.len, 100);
    int ok = 1;
    for (int i = 100; i < 200 && ok; i++)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), i);
    ua_runq_free(&q);
    CHECK(q.items == NULL);
    CHECK_EQ(q.cap, 0);
    CHECK_EQ(q.len, 0);
}

static void test_shrink(void)
{
    ua_runq q;
    ua_runq_init(&q);
    /* Nothing to shrink: no ring at all, or the 16-slot minimum. */
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 0);
    CHECK(q.items == NULL);
    ua_runq_push(&q, ITEM(0));
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 16);
    CHECK_EQ(NUM(ua_runq_pop(&q)), 0);

    /* Empty after a burst: back to 16. */
    ua_runq_reserve(&q, 1024);
    CHECK_EQ(q.cap, 1024);
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 16);
    CHECK_EQ(q.len, 0);
    CHECK_EQ(ua_runq_push(&q, ITEM(1)), 0);
    CHECK_EQ(NUM(ua_runq_pop(&q)), 1);

    /* 10 items in 1024 slots: halved while the result stays at most a
     * quarter full, so 64 (10 <= 16), not 32 (10 > 8). The ring is wrapped
     * when it shrinks; order survives. */
    ua_runq_reserve(&q, 1024);
    for (int i = 0; i < 1020; i++)
        ua_runq_push(&q, ITEM(i));
    for (int i = 0; i < 1020; i++)
        ua_runq_pop(&q);
    for (int i = 0; i < 10; i++)
        ua_runq_push(&q, ITEM(500 + i));
    CHECK_EQ(q.head, 1020);
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 64);
    CHECK_EQ(q.len, 10);
    CHECK_EQ(q.head, 0);
    for (size_t i = 0; i < 10; i++)
        CHECK_EQ(NUM(ua_runq_at(&q, i)), 500 + (long)i);
    /* Shrinking again changes nothing: 64 is already as small as allowed. */
    void **items = q.items;
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 64);
    CHECK(q.items == items);
    /* It still grows and works as a queue after shrinking. */
    for (int i = 0; i < 100; i++)
        CHECK_EQ(ua_runq_push(&q, ITEM(510 + i)), 0);
    CHECK_EQ(q.cap, 128);
    int ok = 1;
    for (int i = 0; i < 110 && ok; i++)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), 500 + i);

    /* More than a quarter full: no change. */
    ua_runq_reserve(&q, 256);
    for (int i = 0; i < 65; i++)
        ua_runq_push(&q, ITEM(i));
    items = q.items;
    ua_runq_shrink(&q);
    CHECK_EQ(q.cap, 256);
    CHECK(q.items == items);
    /* Exactly a quarter of the half: 16 items in 256 slots go to 64. */
    for (int i = 0; i < 49; i++)
        ua_runq_pop(&q);
    ua_runq_shrink(&q);
    CHECK_EQ(q.len, 16);
    CHECK_EQ(q.cap, 64);
    ok = 1;
    for (int i = 49; i < 65 && ok; i++)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), i);
    ua_runq_free(&q);
}

static void test_random_push_pop_keeps_fifo(void)
{
    ua_runq q;
    ua_runq_init(&q);
    long next_in = 0, next_out = 0;
    int ok = 1;
    /* Bursts of pushes and pops, so growth happens at many head positions. */
    for (int op = 0; op < 200000 && ok; op++) {
        if (check_rand_below(100) < 52) {
            ok = CHECK_EQ(ua_runq_push(&q, ITEM(next_in)), 0);
            next_in++;
        } else if (q.len) {
            ok = CHECK_EQ(NUM(ua_runq_pop(&q)), next_out++);
        }
        ok = ok && CHECK_EQ(q.len, (size_t)(next_in - next_out)) && CHECK(q.len <= q.cap) &&
             CHECK(is_pow2(q.cap)) && CHECK(q.head < q.cap);
        /* Shrink now and then, as the loop does when the queue drains. */
        if (ok && op % 1013 == 0) {
            ua_runq_shrink(&q);
            ok = CHECK(q.cap <= 16 || q.len * 8 > q.cap) && CHECK(q.len <= q.cap);
        }
        if (ok && q.len && op % 97 == 0)
            ok = CHECK_EQ(NUM(ua_runq_at(&q, q.len - 1)), next_in - 1) &&
                 CHECK_EQ(NUM(ua_runq_at(&q, 0)), next_out);
    }
    while (ok && q.len)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), next_out++);
    CHECK_EQ(next_out, next_in);
    ua_runq_free(&q);
}

int main(void)
{
    RUN(test_init_is_empty);
    RUN(test_fifo_order);
    RUN(test_first_push_allocates_16);
    RUN(test_growth_while_ring_is_wrapped);
    RUN(test_at_walks_from_head_when_wrapped);
    RUN(test_reserve);
    RUN(test_shrink);
    RUN(test_random_push_pop_keeps_fifo);
    return check_summary("test_runq");
}
