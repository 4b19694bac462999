/* The C core when memory runs out: each scenario runs with every allocation
 * it makes failing in turn (failalloc.h). A failed operation must say so and
 * leave its structure as the header promises: the run queue, timer heap and
 * map unchanged, a line buffer emptied, the poller usable. Under ASan or
 * valgrind (make asan, make valgrind) the runs also show that nothing leaks
 * or is read after being freed on those paths. Built with the core's
 * sources and `-include failalloc.h` (see tests/test_c_core.py). */
#include "check.h"
#include "failalloc.h"

#include "linebuf.h"
#include "poller.h"
#include "ptrmap.h"
#include "runq.h"
#include "ticks.h"
#include "timerheap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#define ITEM(n) ((void *)(uintptr_t)((n) + 1))
#define NUM(p) ((long)(uintptr_t)(p) - 1)

static void runq_scenario(void)
{
    ua_runq q;
    ua_runq_init(&q);
    long pushed[200];
    size_t n = 0;
    int ok = 1;
    for (long i = 0; i < 200 && ok; i++) {
        size_t before = q.len;
        int front = i % 7 == 3;
        int rc = front ? ua_runq_push_front(&q, ITEM(i)) : ua_runq_push(&q, ITEM(i));
        if (rc < 0) {
            ok = CHECK(failalloc_failed) && CHECK_EQ(q.len, before);
            continue;
        }
        if (front) {
            memmove(pushed + 1, pushed, n * sizeof(*pushed));
            pushed[0] = i;
        } else {
            pushed[n] = i;
        }
        n++;
    }
    /* Shrinking needs a new ring: failing, it keeps the old one. */
    while (q.len > 10)
        ua_runq_pop(&q);
    size_t dropped = n - q.len;
    ua_runq_shrink(&q);
    CHECK_EQ(q.len, 10 < n ? 10 : n);
    for (size_t i = 0; q.len && ok; i++)
        ok = CHECK_EQ(NUM(ua_runq_pop(&q)), pushed[dropped + i]);
    ua_runq_free(&q);
}

static int pop_in_order(ua_timerheap *h, size_t want)
{
    size_t got = 0;
    ua_timer *prev = NULL, *t;
    int ok = 1;
    while ((t = ua_timerheap_pop(h)) && ok) {
        if (prev)
            ok = CHECK(ua_ticks_diff(t->deadline, prev->deadline) >= 0);
        prev = t;
        got++;
    }
    return ok && CHECK_EQ(got, want);
}

static void timerheap_scenario(void)
{
    static ua_timer nodes[300];
    ua_timerheap h;
    ua_timerheap_init(&h);
    size_t queued = 0;
    int ok = 1;
    for (unsigned i = 0; i < 300 && ok; i++) {
        nodes[i].deadline = (i * 7919u) % 1000u;
        uint32_t before = h.len;
        if (ua_timerheap_push(&h, &nodes[i]) < 0)
            ok = CHECK(failalloc_failed) && CHECK_EQ(h.len, before);
        else
            queued++;
    }
    pop_in_order(&h, queued);
    ua_timerheap_free(&h);
}

/* The map's items must be 8-byte aligned, 32-bit builds included. */
typedef struct keyed {
    _Alignas(8) void *key;
} keyed;

static void ptrmap_scenario(void)
{
    static keyed items[500];
    static char keys[500];
    static int present[500];
    ua_ptrmap m;
    ua_ptrmap_init(&m, offsetof(keyed, key));
    int ok = 1;
    for (int i = 0; i < 500 && ok; i++) {
        items[i].key = &keys[i];
        size_t before = m.len;
        present[i] = ua_ptrmap_add(&m, &items[i]) == 0;
        if (!present[i])
            ok = CHECK(failalloc_failed) && CHECK_EQ(m.len, before);
    }
    for (int i = 0; i < 500 && ok; i++)
        ok = CHECK(ua_ptrmap_get(&m, &keys[i]) == (present[i] ? &items[i] : NULL));
    for (int i = 0; i < 500 && ok; i += 2)
        ok = CHECK(ua_ptrmap_del(&m, &keys[i]) == (present[i] ? &items[i] : NULL));
    ua_ptrmap_free(&m);
}

static void linebuf_scenario(void)
{
    ua_linebuf b;
    ua_linebuf_init(&b);
    char chunk[1000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = i % 97 == 96 ? '\n' : 'a' + i % 26;
    int ok = 1;
    for (int round = 0; round < 40 && ok; round++) {
        size_t before = ua_linebuf_len(&b);
        if (ua_linebuf_append(&b, chunk, sizeof(chunk)) < 0) {
            /* No memory: what was buffered is lost, and the buffer is empty. */
            ok = CHECK(failalloc_failed) && CHECK_EQ(ua_linebuf_len(&b), 0) && CHECK(!b.data);
            continue;
        }
        ok = CHECK_EQ(ua_linebuf_len(&b), before + sizeof(chunk));
        ssize_t line = ua_linebuf_find_line(&b);
        if (round % 3 == 0 && line > 0) {
            /* Hand a line over: failing, nothing changes. */
            size_t len = ua_linebuf_len(&b), cap;
            char *block = ua_linebuf_detach(&b, (size_t)line, &cap);
            if (!block) {
                ok = CHECK(failalloc_failed) && CHECK_EQ(ua_linebuf_len(&b), len);
            } else {
                ok = CHECK(block[line - 1] == '\n') && CHECK_EQ(ua_linebuf_len(&b), len - (size_t)line);
                free(block);
            }
        } else if (line > 0) {
            ua_linebuf_consume(&b, (size_t)line);
        }
    }
    ua_linebuf_free(&b);
}

static void poller_scenario(void)
{
    ua_poller p;
    if (ua_poller_init(&p) < 0) {
        CHECK(failalloc_failed);
        CHECK_EQ(errno, ENOMEM);
        CHECK_EQ(p.epfd, -1);
        return;
    }
    int fds[2];
    if (!CHECK_EQ(pipe(fds), 0)) {
        ua_poller_close(&p);
        return;
    }
    /* A high fd number makes the poller's table grow. */
    int high = fcntl(fds[0], F_DUPFD, 300);
    int w = 0;
    CHECK(high >= 300);
    if (ua_poller_add(&p, high, 0, &w) < 0) {
        CHECK(failalloc_failed);
        CHECK(ua_poller_waiter(&p, high, 0) == NULL);
    } else {
        CHECK(ua_poller_waiter(&p, high, 0) == &w);
        CHECK(ua_poller_remove(&p, high, 0) == &w);
    }
    /* Whatever failed before, the poller still works. */
    failalloc_disarm();
    CHECK_EQ(ua_poller_add(&p, fds[1], 1, &w), 0);
    CHECK_EQ(ua_poller_poll(&p, 1000), 1);
    CHECK(ua_poller_remove(&p, fds[1], 1) == &w);
    close(high);
    close(fds[0]);
    close(fds[1]);
    ua_poller_close(&p);
}

static void scenario(const char *name, void (*fn)(void))
{
    check_test = name;
    long made = failalloc_each(fn);
    /* Each scenario must really allocate, or it tested nothing. */
    CHECK(made > 0);
}

int main(void)
{
    scenario("runq", runq_scenario);
    scenario("timerheap", timerheap_scenario);
    scenario("ptrmap", ptrmap_scenario);
    scenario("linebuf", linebuf_scenario);
    scenario("poller", poller_scenario);
    return check_summary("test_alloc_failures");
}
