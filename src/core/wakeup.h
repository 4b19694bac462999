/* Waking a loop that blocks in its poller, from another thread or from a
 * signal handler.
 *
 * A non-blocking pipe: the loop polls its read end, a waker writes one byte
 * to its write end. A pipe rather than an eventfd because CPython's signal
 * handler writes single bytes to the fd given to signal.set_wakeup_fd(), and
 * one fd pair then serves both. An atomic flag records that a wake-up was
 * asked for: a loop that is not blocked reads one word per pass, never the
 * pipe, and a burst of wake-ups writes one byte. */
#ifndef UA_WAKEUP_H
#define UA_WAKEUP_H

#include <stdatomic.h>

typedef struct ua_wakeup {
    int rfd, wfd;           /* -1 when closed */
    atomic_int pending;     /* ua_wakeup_signal() called since the last take */
} ua_wakeup;

/* 0, or -1 with errno. */
int ua_wakeup_init(ua_wakeup *w);
void ua_wakeup_close(ua_wakeup *w);

/* Any thread, a signal handler too (async-signal-safe: an atomic exchange
 * and at most one write()). Must not race with ua_wakeup_close(). */
void ua_wakeup_signal(ua_wakeup *w);

/* The loop's own thread, where the loop is not blocked: set the flag
 * without writing. The loop must look at it before it blocks. */
static inline void ua_wakeup_mark(ua_wakeup *w)
{
    atomic_store_explicit(&w->pending, 1, memory_order_relaxed);
}

/* For the loop: nonzero if ua_wakeup_signal() was called since the last
 * take; clears the flag. Check it (cheaply: ua_wakeup_asked) before blocking;
 * a signal after the take writes a byte, so the poller returns at once. */
static inline int ua_wakeup_asked(ua_wakeup *w)
{
    return atomic_load_explicit(&w->pending, memory_order_relaxed);
}

static inline int ua_wakeup_take(ua_wakeup *w)
{
    return atomic_exchange(&w->pending, 0);
}

/* For the loop, when the poller reports the read end ready: read out every
 * byte (wake-ups and signal numbers alike). */
void ua_wakeup_drain(ua_wakeup *w);

#endif
