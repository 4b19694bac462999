/* Wrap-around millisecond ticks, as on MicroPython's 32-bit ports.
 *
 * Ticks live in [0, UA_TICKS_PERIOD). Two ticks are compared only through
 * ua_ticks_diff(), which is correct while they are less than half a period
 * (about 6.2 days) apart: that is what lets timers keep their order across
 * the wrap every ~12.4 days. */
#ifndef UA_TICKS_H
#define UA_TICKS_H

#include <stdint.h>

#define UA_TICKS_PERIOD   (1u << 30)
#define UA_TICKS_MASK     (UA_TICKS_PERIOD - 1u)
#define UA_TICKS_HALF     (UA_TICKS_PERIOD / 2u)
/* The longest delay a timer can hold and still be ordered right. */
#define UA_TICKS_MAX_DELAY ((int32_t)UA_TICKS_HALF - 1)

/* Milliseconds of CLOCK_MONOTONIC, wrapped to the period. */
uint32_t ua_ticks_ms(void);

/* A value that changes whenever the coarse monotonic clock moves (every
 * few ms): whether time went on since the last look, for a quarter of
 * ua_ticks_ms()'s cost. */
uint32_t ua_ticks_coarse(void);

/* t + delta, wrapped. delta must lie in (-HALF, HALF); callers check. */
static inline uint32_t ua_ticks_add(uint32_t t, int32_t delta)
{
    return (t + (uint32_t)delta) & UA_TICKS_MASK;
}

/* Signed distance end - start, in [-HALF, HALF). */
static inline int32_t ua_ticks_diff(uint32_t end, uint32_t start)
{
    return (int32_t)((end - start + UA_TICKS_HALF) & UA_TICKS_MASK) - (int32_t)UA_TICKS_HALF;
}

#endif
