/* A tiny assertion kit for the C unit tests of src/core.
 *
 * CHECK(cond) counts one passed or failed check and prints a line for each
 * failure; CHECK_EQ compares two integers and prints both on failure. A test
 * program calls its test functions, then returns check_summary("name"),
 * which prints "name: N passed, M failed" and gives the exit status. */
#ifndef UA_TEST_CHECK_H
#define UA_TEST_CHECK_H

#include <stdio.h>

static int check_passed;
static int check_failed;
/* The test function running now, for the failure lines. */
static const char *check_test = "?";

static inline int check_report(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        printf("FAIL %s:%d [%s] %s\n", file, line, check_test, what);
        fflush(stdout);   /* keep it if a sanitizer aborts the run later */
    }
    return ok;
}

static inline int check_report_eq(long long a, long long b, const char *file, int line,
                                  const char *what)
{
    if (a == b) {
        check_passed++;
        return 1;
    }
    check_failed++;
    printf("FAIL %s:%d [%s] %s (%lld != %lld)\n", file, line, check_test, what, a, b);
    fflush(stdout);
    return 0;
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) \
    check_report_eq((long long)(a), (long long)(b), __FILE__, __LINE__, #a " == " #b)

/* Runs one test function and remembers its name for failure lines. */
#define RUN(fn) (check_test = #fn, fn())

static inline int check_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    fflush(stdout);
    return check_failed ? 1 : 0;
}

/* A small fixed-seed generator, so every run does the same operations. */
static unsigned long long check_rng_state = 0x243F6A8885A308D3ull;

static inline unsigned check_rand(void)
{
    /* xorshift64*: good enough and the same on every platform. */
    check_rng_state ^= check_rng_state >> 12;
    check_rng_state ^= check_rng_state << 25;
    check_rng_state ^= check_rng_state >> 27;
    return (unsigned)((check_rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Uniform enough in [0, n) for n far below 2**32. */
static inline unsigned check_rand_below(unsigned n)
{
    return check_rand() % n;
}

#endif
