/* Unit tests of timerheap.h / timerheap.c: order by wrap-safe deadline then
 * push order, removal of any node, growth. */
#include "check.h"
#include "ticks.h"
#include "timerheap.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* A caller's record with the timer embedded, as the loop does it. */
typedef struct rec {
    int id;
    ua_timer timer;     /* not first, so the offset arithmetic is exercised */
    int64_t vtime;      /* unwrapped deadline, for the reference order */
    int64_t order;      /* push order, for the reference order */
    int queued;
} rec;

#define REC_OF(t) ((rec *)((char *)(t) - offsetof(rec, timer)))

static int64_t push_counter;

static int push(ua_timerheap *h, rec *r, int64_t vtime)
{
    r->vtime = vtime;
    r->timer.deadline = (uint32_t)(((vtime % UA_TICKS_PERIOD) + UA_TICKS_PERIOD) % UA_TICKS_PERIOD);
    r->order = push_counter++;
    r->queued = 1;
    return ua_timerheap_push(h, &r->timer);
}

static rec *pop(ua_timerheap *h)
{
    ua_timer *t = ua_timerheap_pop(h);
    if (!t)
        return NULL;
    REC_OF(t)->queued = 0;
    return REC_OF(t);
}

static int ref_cmp(const void *pa, const void *pb)
{
    const rec *a = *(rec *const *)pa, *b = *(rec *const *)pb;
    if (a->vtime != b->vtime)
        return a->vtime < b->vtime ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The order the heap promises: wrap-safe deadline, then push sequence. */
static int fires_before(const ua_timer *a, const ua_timer *b)
{
    int32_t d = ua_ticks_diff(a->deadline, b->deadline);
    return d ? d < 0 : (int32_t)(a->seq - b->seq) < 0;
}

/* Every node's index is its slot, and no child fires before its parent. */
static int heap_ok(const ua_timerheap *h)
{
    if (h->len > h->cap)
        return 0;
    for (uint32_t i = 0; i < h->len; i++) {
        if (h->nodes[i]->index != i)
            return 0;
        if (i > 0 && fires_before(h->nodes[i], h->nodes[(i - 1) / 2]))
            return 0;
    }
    return 1;
}

static void shuffle(rec **v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = check_rand_below((unsigned)i);
        rec *tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

/* Pops everything and checks it comes out exactly as expect[0..n). */
static int drain_matches(ua_timerheap *h, rec **expect, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rec *r = pop(h);
        if (!CHECK(r == expect[i]))
            return 0;
    }
    return CHECK(ua_timerheap_peek(h) == NULL) && CHECK(pop(h) == NULL) && CHECK_EQ(h->len, 0);
}

static void test_empty_heap_gives_null(void)
{
    ua_timerheap h;
    ua_timerheap_init(&h);
    CHECK(ua_timerheap_peek(&h) == NULL);
    CHECK(ua_timerheap_pop(&h) == NULL);
    CHECK_EQ(h.len, 0);
    ua_timerheap_free(&h);
    CHECK(h.nodes == NULL);
}

static void test_single_node_push_peek_pop(void)
{
    ua_timerheap h;
    ua_timerheap_init(&h);
    rec r = {.id = 1};
    CHECK_EQ(push(&h, &r, 500), 0);
    CHECK(ua_timerheap_peek(&h) == &r.timer);
    CHECK_EQ(h.len, 1);
    CHECK(pop(&h) == &r);
    CHECK(ua_timerheap_peek(&h) == NULL);
    /* Pushing the same node again after it left is fine. */
    CHECK_EQ(push(&h, &r, 600), 0);
    CHECK(ua_timerheap_peek(&h) == &r.timer);
    ua_timerheap_free(&h);
}

static void test_random_pushes_pop_in_deadline_then_push_order(void)
{
    enum { N = 2000 };
    static rec recs[N];
    static rec *expect[N];
    ua_timerheap h;
    ua_timerheap_init(&h);
    for (int i = 0; i < N; i++) {
        recs[i].id = i;
        /* A narrow range, so many deadlines are equal. */
        push(&h, &recs[i], 1000 + check_rand_below(300));
        expect[i] = &recs[i];
    }
    CHECK(heap_ok(&h));
    qsort(expect, N, sizeof(expect[0]), ref_cmp);
    drain_matches(&h, expect, N);
    ua_timerheap_free(&h);
}

static void test_deadlines_straddling_the_wrap_keep_order(void)
{
    enum { N = 1010 };
    static rec recs[N];
    static rec *order[N];
    const int64_t base = (int64_t)UA_TICKS_PERIOD - 50;
    ua_timerheap h;
    ua_timerheap_init(&h);
    /* base + 0..100, ten rounds, each round pushed in a fresh random order. */
    for (int i = 0; i < N; i++) {
        recs[i].id = i;
        order[i] = &recs[i];
        recs[i].vtime = base + i % 101;
    }
    shuffle(order, N);
    for (int i = 0; i < N; i++)
        push(&h, order[i], order[i]->vtime);
    /* Half the deadlines wrapped to small numbers: they must still fire last. */
    CHECK_EQ(ua_timerheap_peek(&h)->deadline, UA_TICKS_PERIOD - 50);
    qsort(order, N, sizeof(order[0]), ref_cmp);
    CHECK_EQ(order[N - 1]->timer.deadline, 50);
    drain_matches(&h, order, N);
    ua_timerheap_free(&h);
}

static void test_equal_deadlines_fire_in_push_order(void)
{
    enum { N = 100 };
    static rec recs[N];
    static rec *expect[N];
    ua_timerheap h;
    ua_timerheap_init(&h);
    /* The last tick before the wrap, so the equal-deadline path sees it. */
    for (int i = 0; i < N; i++) {
        recs[i].id = i;
        push(&h, &recs[i], (int64_t)UA_TICKS_PERIOD - 1);
        expect[i] = &recs[i];
    }
    drain_matches(&h, expect, N);
    ua_timerheap_free(&h);
}

static void test_equal_deadlines_keep_push_order_across_seq_wrap(void)
{
    enum { N = 64 };
    static rec recs[N];
    static rec *expect[N];
    ua_timerheap h;
    ua_timerheap_init(&h);
    /* The sequence number is compared wrap-safely too: start it just short
     * of UINT32_MAX so it wraps to 0 in the middle of the pushes. */
    h.next_seq = UINT32_MAX - N / 2;
    for (int i = 0; i < N; i++) {
        recs[i].id = i;
        push(&h, &recs[i], 42);
        expect[i] = &recs[i];
    }
    CHECK(recs[N - 1].timer.seq < recs[0].timer.seq);
    drain_matches(&h, expect, N);
    ua_timerheap_free(&h);
}

enum { VICTIM_FIRST, VICTIM_LAST_SLOT, VICTIM_MIDDLE_SLOT, VICTIM_LATEST };

/* Builds a heap of n nodes, removes one chosen victim, and checks that the
 * rest pop in order. */
static void remove_one_and_drain(int n, int which)
{
    static rec recs[64];
    static rec *order[64];
    ua_timerheap h;
    ua_timerheap_init(&h);
    for (int i = 0; i < n; i++) {
        recs[i].id = i;
        order[i] = &recs[i];
        recs[i].vtime = 10 * i + check_rand_below(15);   /* some ties */
    }
    shuffle(order, (size_t)n);
    for (int i = 0; i < n; i++)
        push(&h, order[i], order[i]->vtime);
    qsort(order, (size_t)n, sizeof(order[0]), ref_cmp);

    ua_timer *victim;
    switch (which) {
    case VICTIM_FIRST: victim = ua_timerheap_peek(&h); break;
    case VICTIM_LAST_SLOT: victim = h.nodes[h.len - 1]; break;
    case VICTIM_MIDDLE_SLOT: victim = h.nodes[h.len / 2]; break;
    default: victim = &order[n - 1]->timer; break;
    }
    ua_timerheap_remove(&h, victim);
    CHECK_EQ(h.len, n - 1);
    CHECK(heap_ok(&h));

    int k = 0;
    for (int i = 0; i < n; i++)
        if (&order[i]->timer != victim)
            order[k++] = order[i];
    drain_matches(&h, order, (size_t)k);
    ua_timerheap_free(&h);
}

static void test_remove_first_last_middle_keeps_order(void)
{
    const int sizes[] = {2, 3, 7, 8, 31, 32, 64};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (int which = VICTIM_FIRST; which <= VICTIM_LATEST; which++)
            for (int round = 0; round < 20; round++)
                remove_one_and_drain(sizes[s], which);
}

static void test_remove_only_node_empties_heap(void)
{
    ua_timerheap h;
    ua_timerheap_init(&h);
    rec r = {.id = 1};
    push(&h, &r, 5);
    ua_timerheap_remove(&h, &r.timer);
    CHECK_EQ(h.len, 0);
    CHECK(ua_timerheap_peek(&h) == NULL);
    CHECK(ua_timerheap_pop(&h) == NULL);
    push(&h, &r, 6);
    CHECK(ua_timerheap_peek(&h) == &r.timer);
    ua_timerheap_free(&h);
}

static void test_remove_that_must_sift_up(void)
{
    /* Pushed in this order the array is exactly
     *   [0, 1, 100, 2, 3, 101, 102, 4]
     * Removing 101 (slot 5) moves 4 from the last slot into slot 5, below
     * 100: the hole has to be filled upwards, not downwards. */
    static const int64_t dl[] = {0, 1, 100, 2, 3, 101, 102, 4};
    rec recs[8];
    ua_timerheap h;
    ua_timerheap_init(&h);
    for (int i = 0; i < 8; i++) {
        recs[i].id = i;
        push(&h, &recs[i], dl[i]);
    }
    for (int i = 0; i < 8; i++)
        CHECK_EQ(h.nodes[i]->deadline, dl[i]);
    CHECK(h.nodes[5] == &recs[5].timer);
    ua_timerheap_remove(&h, &recs[5].timer);
    CHECK(heap_ok(&h));
    CHECK_EQ(recs[7].timer.index, 2);
    rec *expect[] = {&recs[0], &recs[1], &recs[3], &recs[4], &recs[7], &recs[2], &recs[6]};
    drain_matches(&h, expect, 7);
    ua_timerheap_free(&h);
}

static void test_remove_every_node_in_random_order(void)
{
    enum { N = 500 };
    static rec recs[N];
    static rec *order[N];
    ua_timerheap h;
    ua_timerheap_init(&h);
    for (int i = 0; i < N; i++) {
        recs[i].id = i;
        order[i] = &recs[i];
        push(&h, &recs[i], check_rand_below(200));
    }
    shuffle(order, N);
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        ua_timerheap_remove(&h, &order[i]->timer);
        ok = CHECK_EQ(h.len, N - 1 - i) && CHECK(heap_ok(&h));
    }
    CHECK(ua_timerheap_peek(&h) == NULL);
    ua_timerheap_free(&h);
}

static void test_growth_to_100k_nodes(void)
{
    enum { N = 100000 };
    rec *recs = calloc(N, sizeof(*recs));
    rec **expect = calloc(N, sizeof(*expect));
    if (!CHECK(recs && expect))
        return;
    ua_timerheap h;
    ua_timerheap_init(&h);
    int ok = 1;
    /* Near the wrap again, spread over much more than the initial 16 slots. */
    const int64_t base = (int64_t)UA_TICKS_PERIOD - 30000;
    for (int i = 0; i < N && ok; i++) {
        recs[i].id = i;
        expect[i] = &recs[i];
        ok = CHECK_EQ(push(&h, &recs[i], base + check_rand_below(60000)), 0);
    }
    CHECK_EQ(h.len, N);
    CHECK(h.cap >= N);
    CHECK(heap_ok(&h));
    qsort(expect, N, sizeof(expect[0]), ref_cmp);
    drain_matches(&h, expect, N);
    ua_timerheap_free(&h);
    free(recs);
    free(expect);
}

/* Reference: an array of the queued records kept sorted. */
static rec *ref_items[4096];
static size_t ref_len;

static void ref_insert(rec *r)
{
    size_t i = ref_len++;
    while (i > 0 && ref_cmp(&r, &ref_items[i - 1]) < 0) {
        ref_items[i] = ref_items[i - 1];
        i--;
    }
    ref_items[i] = r;
}

static void ref_erase(rec *r)
{
    size_t i = 0;
    while (ref_items[i] != r)
        i++;
    for (; i + 1 < ref_len; i++)
        ref_items[i] = ref_items[i + 1];
    ref_len--;
}

static void test_random_ops_match_sorted_reference(void)
{
    enum { POOL = 4096, OPS = 200000 };
    static rec recs[POOL];
    ua_timerheap h;
    ua_timerheap_init(&h);
    ref_len = 0;
    for (int i = 0; i < POOL; i++)
        recs[i] = (rec){.id = i};
    /* "now" starts short of the wrap and crosses it during the run; every
     * deadline lies within a few thousand ticks of it, as the loop's do. */
    int64_t now = (int64_t)UA_TICKS_PERIOD - 100000;
    int ok = 1;
    for (int op = 0; op < OPS && ok; op++) {
        unsigned what = check_rand_below(10);
        rec *r = &recs[check_rand_below(POOL)];
        if (what < 5) {
            if (r->queued)
                continue;
            ok = CHECK_EQ(push(&h, r, now + check_rand_below(5000)), 0);
            ref_insert(r);
        } else if (what < 7) {
            rec *got = pop(&h);
            if (ref_len == 0) {
                ok = CHECK(got == NULL);
            } else {
                ok = CHECK(got == ref_items[0]);
                ref_erase(ref_items[0]);
                if (got)   /* time moves on to the fired deadline */
                    now = got->vtime > now ? got->vtime : now;
            }
        } else if (what < 9) {
            if (!r->queued)
                continue;
            ua_timerheap_remove(&h, &r->timer);
            r->queued = 0;
            ref_erase(r);
        } else {
            now += check_rand_below(50);
        }
        ua_timer *top = ua_timerheap_peek(&h);
        ok = ok && CHECK_EQ(h.len, ref_len) &&
             CHECK(ref_len ? top == &ref_items[0]->timer : top == NULL);
        if (op % 1000 == 0)
            ok = ok && CHECK(heap_ok(&h));
    }
    /* The run must really have crossed the wrap. */
    CHECK(now > (int64_t)UA_TICKS_PERIOD);
    drain_matches(&h, ref_items, ref_len);
    ua_timerheap_free(&h);
}

static void test_free_resets_for_reuse(void)
{
    ua_timerheap h;
    ua_timerheap_init(&h);
    rec a = {.id = 1}, b = {.id = 2};
    push(&h, &a, 10);
    push(&h, &b, 5);
    ua_timerheap_free(&h);
    CHECK(h.nodes == NULL);
    CHECK_EQ(h.len, 0);
    CHECK_EQ(h.cap, 0);
    push(&h, &a, 10);
    push(&h, &b, 5);
    CHECK(pop(&h) == &b);
    CHECK(pop(&h) == &a);
    ua_timerheap_free(&h);
}

int main(void)
{
    RUN(test_empty_heap_gives_null);
    RUN(test_single_node_push_peek_pop);
    RUN(test_random_pushes_pop_in_deadline_then_push_order);
    RUN(test_deadlines_straddling_the_wrap_keep_order);
    RUN(test_equal_deadlines_fire_in_push_order);
    RUN(test_equal_deadlines_keep_push_order_across_seq_wrap);
    RUN(test_remove_first_last_middle_keeps_order);
    RUN(test_remove_only_node_empties_heap);
    RUN(test_remove_that_must_sift_up);
    RUN(test_remove_every_node_in_random_order);
    RUN(test_growth_to_100k_nodes);
    RUN(test_random_ops_match_sorted_reference);
    RUN(test_free_resets_for_reuse);
    return check_summary("test_timerheap");
}
