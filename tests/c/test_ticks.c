/* Unit tests of ticks.h / ticks.c: wrap-around arithmetic and the clock. */
#include "check.h"
#include "ticks.h"

#include <stdint.h>
#include <time.h>

#define PERIOD ((int64_t)UA_TICKS_PERIOD)
#define HALF ((int64_t)UA_TICKS_HALF)

/* Plain 64-bit models of MicroPython's ticks_add/ticks_diff, with no
 * reliance on unsigned wrap-around: what the inline versions must equal. */
static int64_t mod_period(int64_t x)
{
    x %= PERIOD;
    return x < 0 ? x + PERIOD : x;
}

static uint32_t ref_add(uint32_t t, int32_t d)
{
    return (uint32_t)mod_period((int64_t)t + d);
}

static int32_t ref_diff(uint32_t end, uint32_t start)
{
    return (int32_t)(mod_period((int64_t)end - start + HALF) - HALF);
}

/* Tick values where wrap mistakes show: both ends and both half marks. */
static const uint32_t edge_ticks[] = {
    0, 1, 2, 49, 50,
    UA_TICKS_HALF - 2, UA_TICKS_HALF - 1, UA_TICKS_HALF, UA_TICKS_HALF + 1,
    UA_TICKS_PERIOD - 51, UA_TICKS_PERIOD - 50, UA_TICKS_PERIOD - 2, UA_TICKS_PERIOD - 1,
};
#define N_EDGE_TICKS (sizeof(edge_ticks) / sizeof(edge_ticks[0]))

/* Deltas inside (-HALF, HALF), again biased to the edges. */
static const int32_t edge_deltas[] = {
    0, 1, -1, 2, -2, 50, -50, 1000, -1000,
    (int32_t)HALF / 2, -(int32_t)HALF / 2,
    (int32_t)HALF - 2, -(int32_t)HALF + 2,
    (int32_t)HALF - 1, -(int32_t)HALF + 1,
};
#define N_EDGE_DELTAS (sizeof(edge_deltas) / sizeof(edge_deltas[0]))

static void test_constants(void)
{
    CHECK_EQ(UA_TICKS_PERIOD, 1u << 30);
    CHECK_EQ(UA_TICKS_MASK, (1u << 30) - 1);
    CHECK_EQ(UA_TICKS_HALF, 1u << 29);
    CHECK_EQ(UA_TICKS_MAX_DELAY, (1 << 29) - 1);
}

static void test_add_wraps_at_period(void)
{
    CHECK_EQ(ua_ticks_add(UA_TICKS_PERIOD - 1, 1), 0);
    CHECK_EQ(ua_ticks_add(0, -1), UA_TICKS_PERIOD - 1);
    CHECK_EQ(ua_ticks_add(UA_TICKS_PERIOD - 10, 20), 10);
    CHECK_EQ(ua_ticks_add(10, -20), UA_TICKS_PERIOD - 10);
    CHECK_EQ(ua_ticks_add(UA_TICKS_PERIOD - 1, UA_TICKS_MAX_DELAY), UA_TICKS_HALF - 2);
    CHECK_EQ(ua_ticks_add(0, -UA_TICKS_MAX_DELAY), UA_TICKS_HALF + 1);
    CHECK_EQ(ua_ticks_add(12345, 0), 12345);
}

static void test_diff_across_wrap(void)
{
    /* Just after the wrap is later than just before it. */
    CHECK_EQ(ua_ticks_diff(0, UA_TICKS_PERIOD - 1), 1);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_PERIOD - 1, 0), -1);
    CHECK_EQ(ua_ticks_diff(49, UA_TICKS_PERIOD - 50), 99);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_PERIOD - 50, 49), -99);
    CHECK_EQ(ua_ticks_diff(7, 7), 0);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_PERIOD - 1, UA_TICKS_PERIOD - 1), 0);
}

static void test_diff_half_period_edges(void)
{
    /* The range is [-HALF, HALF): exactly half a period apart reads as
     * -HALF whichever way round, one less reads as itself. */
    CHECK_EQ(ua_ticks_diff(UA_TICKS_HALF, 0), -HALF);
    CHECK_EQ(ua_ticks_diff(0, UA_TICKS_HALF), -HALF);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_HALF - 1, 0), HALF - 1);
    CHECK_EQ(ua_ticks_diff(0, UA_TICKS_HALF - 1), -(HALF - 1));
    CHECK_EQ(ua_ticks_diff(UA_TICKS_HALF + 1, 0), -(HALF - 1));
    CHECK_EQ(ua_ticks_diff(0, UA_TICKS_HALF + 1), HALF - 1);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_PERIOD - 1, UA_TICKS_HALF - 1), -HALF);
    CHECK_EQ(ua_ticks_diff(UA_TICKS_HALF - 2, UA_TICKS_PERIOD - 1), HALF - 1);
}

static void test_add_and_diff_match_reference_on_edges(void)
{
    int ok = 1;
    for (size_t i = 0; i < N_EDGE_TICKS && ok; i++) {
        for (size_t j = 0; j < N_EDGE_DELTAS && ok; j++) {
            uint32_t t = edge_ticks[i];
            int32_t d = edge_deltas[j];
            ok = CHECK_EQ(ua_ticks_add(t, d), ref_add(t, d));
        }
        for (size_t j = 0; j < N_EDGE_TICKS && ok; j++)
            ok = CHECK_EQ(ua_ticks_diff(edge_ticks[i], edge_ticks[j]),
                          ref_diff(edge_ticks[i], edge_ticks[j]));
    }
}

static void test_diff_undoes_add(void)
{
    /* ticks_diff(ticks_add(t, d), t) == d for every d in (-HALF, HALF). */
    int ok = 1;
    for (size_t i = 0; i < N_EDGE_TICKS && ok; i++) {
        for (size_t j = 0; j < N_EDGE_DELTAS && ok; j++) {
            uint32_t t = edge_ticks[i];
            int32_t d = edge_deltas[j];
            uint32_t u = ua_ticks_add(t, d);
            ok = CHECK(u < UA_TICKS_PERIOD) && CHECK_EQ(ua_ticks_diff(u, t), d) &&
                 CHECK_EQ(ua_ticks_diff(t, u), -d);
        }
    }
}

static void test_random_add_diff_against_reference(void)
{
    int ok = 1;
    for (int n = 0; n < 200000 && ok; n++) {
        uint32_t t = check_rand() & UA_TICKS_MASK;
        uint32_t u = check_rand() & UA_TICKS_MASK;
        /* d uniform over (-HALF, HALF). */
        int32_t d = (int32_t)check_rand_below((unsigned)(2 * HALF - 1)) - (int32_t)(HALF - 1);
        uint32_t s = ua_ticks_add(t, d);
        int32_t du = ua_ticks_diff(u, t);
        ok = CHECK(s < UA_TICKS_PERIOD) && CHECK_EQ(s, ref_add(t, d)) &&
             CHECK_EQ(ua_ticks_diff(s, t), d) && CHECK_EQ(du, ref_diff(u, t)) &&
             CHECK(du >= -HALF && du < HALF) &&
             /* Adding the distance back lands on the other tick. */
             CHECK_EQ(ua_ticks_add(t, du), u);
    }
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_ticks_ms_in_range_and_non_decreasing(void)
{
    uint32_t prev = ua_ticks_ms();
    int ok = CHECK(prev < UA_TICKS_PERIOD);
    /* Compare with ticks_diff, not <: the clock may wrap during the run. */
    for (int n = 0; n < 100000 && ok; n++) {
        uint32_t now = ua_ticks_ms();
        ok = CHECK(now < UA_TICKS_PERIOD) && CHECK(ua_ticks_diff(now, prev) >= 0);
        prev = now;
    }
}

static void test_ticks_ms_follows_monotonic_clock(void)
{
    int64_t before = monotonic_ms();
    uint32_t t0 = ua_ticks_ms();
    int64_t after = monotonic_ms();
    /* t0 lies between the two clock readings, modulo the period. */
    CHECK(ua_ticks_diff(t0, (uint32_t)mod_period(before)) >= 0);
    CHECK(ua_ticks_diff((uint32_t)mod_period(after), t0) >= 0);

    struct timespec pause = {0, 30 * 1000000};
    nanosleep(&pause, NULL);
    int32_t elapsed = ua_ticks_diff(ua_ticks_ms(), t0);
    /* Generous bounds: at least the sleep (ms truncation may cost 1). */
    CHECK(elapsed >= 29);
    CHECK(elapsed < 10000);
}

int main(void)
{
    RUN(test_constants);
    RUN(test_add_wraps_at_period);
    RUN(test_diff_across_wrap);
    RUN(test_diff_half_period_edges);
    RUN(test_add_and_diff_match_reference_on_edges);
    RUN(test_diff_undoes_add);
    RUN(test_random_add_diff_against_reference);
    RUN(test_ticks_ms_in_range_and_non_decreasing);
    RUN(test_ticks_ms_follows_monotonic_clock);
    return check_summary("test_ticks");
}
