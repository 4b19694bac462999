/* A failing allocator for the C core's unit tests.
 *
 * test_alloc_failures is built with `-include tests/c/failalloc.h` and
 * tests/c/failalloc.c: the core's malloc/calloc/realloc calls go through the
 * counters there, and failalloc_arm(n) makes the n-th allocation from now
 * (1 = the next one) return NULL, as a system out of memory would. Each
 * scenario is run with every allocation it makes failing in turn; it checks
 * that every failure is reported and leaves its structure as promised (and,
 * under ASan or valgrind, that nothing leaks or is used after being freed). */
#ifndef UA_TEST_FAILALLOC_H
#define UA_TEST_FAILALLOC_H

/* The system's declarations first, so the macros below rename calls only. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

extern long failalloc_calls;   /* allocations since the last arm */
extern int failalloc_failed;   /* set when an allocation was failed */

void *failalloc_malloc(size_t n);
void *failalloc_calloc(size_t k, size_t n);
/* A failed realloc leaves the block as it was, as the C library's does. */
void *failalloc_realloc(void *p, size_t n);

/* Fail the n-th allocation from now (0: none), counting from zero. */
void failalloc_arm(long n);
/* No more failures in this run (its allocations are still counted). */
void failalloc_disarm(void);

/* Runs scenario() with the 1st, 2nd, ... allocation failing, until a run
 * makes fewer allocations than the one it was to fail (that run had none
 * failing). Returns how many allocations the scenario makes. */
long failalloc_each(void (*scenario)(void));

#define malloc failalloc_malloc
#define calloc failalloc_calloc
#define realloc failalloc_realloc

#endif
