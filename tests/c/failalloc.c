/* The failing allocator of failalloc.h, over the C library's. */
#include "failalloc.h"

#undef malloc
#undef calloc
#undef realloc

long failalloc_calls;
int failalloc_failed;
static long countdown;   /* 0: never fail */

static int fails(void)
{
    failalloc_calls++;
    if (countdown && --countdown == 0) {
        failalloc_failed = 1;
        return 1;
    }
    return 0;
}

void *failalloc_malloc(size_t n) { return fails() ? NULL : malloc(n); }
void *failalloc_calloc(size_t k, size_t n) { return fails() ? NULL : calloc(k, n); }
void *failalloc_realloc(void *p, size_t n) { return fails() ? NULL : realloc(p, n); }

void failalloc_arm(long n)
{
    countdown = n;
    failalloc_calls = 0;
    failalloc_failed = 0;
}

void failalloc_disarm(void)
{
    countdown = 0;
}

long failalloc_each(void (*scenario)(void))
{
    for (long n = 1;; n++) {
        failalloc_arm(n);
        scenario();
        long made = failalloc_calls;
        failalloc_arm(0);
        if (made < n)
            return made;
    }
}
