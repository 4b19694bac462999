#include "ticks.h"

#include <time.h>

uint32_t ua_ticks_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return (uint32_t)(ms & UA_TICKS_MASK);
}

uint32_t ua_ticks_coarse(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
#else
    return ua_ticks_ms();
#endif
}
