/* Unit tests of wakeup.h / wakeup.c, alone and watched by the poller. */
#include "check.h"
#include "poller.h"
#include "wakeup.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

static int pending_bytes(ua_wakeup *w)
{
    char buf[64];
    int total = 0;
    ssize_t n;
    while ((n = read(w->rfd, buf, sizeof(buf))) > 0)
        total += (int)n;
    return total;
}

static void test_a_burst_of_wakeups_writes_one_byte(void)
{
    ua_wakeup w;
    CHECK_EQ(ua_wakeup_init(&w), 0);
    CHECK(!ua_wakeup_asked(&w));
    for (int i = 0; i < 100; i++)
        ua_wakeup_signal(&w);
    CHECK(ua_wakeup_asked(&w));
    CHECK_EQ(pending_bytes(&w), 1);
    CHECK_EQ(ua_wakeup_take(&w), 1);
    CHECK_EQ(ua_wakeup_take(&w), 0);
    /* Taken: the next wake-up writes again. */
    ua_wakeup_signal(&w);
    CHECK_EQ(pending_bytes(&w), 1);
    ua_wakeup_close(&w);
    CHECK_EQ(w.rfd, -1);
    ua_wakeup_signal(&w);   /* closed: harmless */
}

static void test_drain_reads_every_byte(void)
{
    ua_wakeup w;
    CHECK_EQ(ua_wakeup_init(&w), 0);
    /* Bytes written by others (a signal handler's) are drained too. */
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(write(w.wfd, "x", 1), 1);
    ua_wakeup_drain(&w);
    char c;
    CHECK_EQ(read(w.rfd, &c, 1), -1);
    CHECK_EQ(errno, EAGAIN);
    ua_wakeup_drain(&w);   /* empty: returns at once */
    ua_wakeup_close(&w);
}

static void test_a_full_pipe_does_not_block_the_waker(void)
{
    ua_wakeup w;
    CHECK_EQ(ua_wakeup_init(&w), 0);
    while (write(w.wfd, "x", 1) == 1)
        ;
    ua_wakeup_signal(&w);   /* EAGAIN: still wakes, does not block */
    CHECK(ua_wakeup_asked(&w));
    ua_wakeup_drain(&w);
    ua_wakeup_close(&w);
}

static void dispatch_none(void *ctx, void *waiter, int fd, int dir, int hangup)
{
    (void)waiter, (void)fd, (void)dir, (void)hangup;
    (*(int *)ctx)++;
}

static void test_poller_reports_the_wakeup_without_handing_out(void)
{
    ua_poller p;
    ua_wakeup w;
    int handed = 0;
    CHECK_EQ(ua_poller_init(&p), 0);
    CHECK_EQ(ua_wakeup_init(&w), 0);
    CHECK_EQ(ua_poller_set_wakeup(&p, w.rfd), 0);
    CHECK_EQ(ua_poller_poll(&p, 0), 0);
    ua_wakeup_signal(&w);
    CHECK_EQ(ua_poller_poll(&p, -1), 1);   /* would block for ever otherwise */
    CHECK_EQ(ua_poller_dispatch(&p, dispatch_none, &handed), 0);
    CHECK_EQ(handed, 0);
    CHECK_EQ(p.woken, 1);
    CHECK_EQ(p.nwaiters, 0);
    p.woken = 0;
    ua_wakeup_drain(&w);
    CHECK_EQ(ua_poller_poll(&p, 0), 0);     /* drained: quiet again */
    ua_poller_close(&p);
    ua_wakeup_close(&w);
}

static void *wake_later(void *arg)
{
    usleep(20000);
    ua_wakeup_signal(arg);
    return NULL;
}

static void test_another_thread_ends_a_blocking_poll(void)
{
    ua_poller p;
    ua_wakeup w;
    pthread_t th;
    CHECK_EQ(ua_poller_init(&p), 0);
    CHECK_EQ(ua_wakeup_init(&w), 0);
    CHECK_EQ(ua_poller_set_wakeup(&p, w.rfd), 0);
    CHECK_EQ(pthread_create(&th, NULL, wake_later, &w), 0);
    CHECK_EQ(ua_poller_poll(&p, 60000), 1);
    pthread_join(th, NULL);
    CHECK_EQ(ua_wakeup_take(&w), 1);
    ua_poller_close(&p);
    ua_wakeup_close(&w);
}

int main(void)
{
    RUN(test_a_burst_of_wakeups_writes_one_byte);
    RUN(test_drain_reads_every_byte);
    RUN(test_a_full_pipe_does_not_block_the_waker);
    RUN(test_poller_reports_the_wakeup_without_handing_out);
    RUN(test_another_thread_ends_a_blocking_poll);
    return check_summary("test_wakeup");
}
