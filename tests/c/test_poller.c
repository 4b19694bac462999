/* Unit tests of poller.h / poller_epoll.c on real fds: socketpairs, pipes,
 * a regular file and a directory. */
#include "check.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Every realloc in this program moves the block and scribbles over the old
 * one before freeing it, so a pointer kept across a growth of the poller's
 * table misbehaves in a plain build too, not only under valgrind or ASan
 * (where glibc might have grown the block in place). */
void *realloc(void *old, size_t size)
{
    void *fresh = malloc(size ? size : 1);
    if (!fresh || !old)
        return fresh;
    size_t had = malloc_usable_size(old);
    memcpy(fresh, old, had < size ? had : size);
    /* volatile: a plain memset right before free() may be optimized out. */
    volatile unsigned char *scribble = old;
    for (size_t i = 0; i < had; i++)
        scribble[i] = 0xA5;
    free(old);
    return fresh;
}

/* Waiters are opaque to the poller; these just have distinct addresses. */
static char waiter_a, waiter_b, waiter_c;
#define WA ((void *)&waiter_a)
#define WB ((void *)&waiter_b)
#define WC ((void *)&waiter_c)

/* What the ready callback saw. */
typedef struct seen {
    void *waiter;
    int fd, dir, hangup;
} seen;

typedef struct recorder {
    seen calls[1024];
    int n;
    /* Optional re-entry into the poller from the callback. */
    ua_poller *p;
    int readd_fd, readd_dir;    /* add this waiter again (-1: no) */
    void *readd_waiter;
    int extra_fd, extra_dir;    /* and park extra_waiter here (-1: no) */
    void *extra_waiter;
    int extra_rc;
} recorder;

static void rec_init(recorder *r, ua_poller *p)
{
    memset(r, 0, sizeof(*r));
    r->p = p;
    r->readd_fd = r->extra_fd = -1;
}

static void on_ready(void *ctx, void *waiter, int fd, int dir, int hangup)
{
    recorder *r = ctx;
    if (r->n < (int)(sizeof(r->calls) / sizeof(r->calls[0])))
        r->calls[r->n] = (seen){waiter, fd, dir, hangup};
    r->n++;
    if (r->readd_fd == fd && r->readd_dir == dir)
        ua_poller_add(r->p, fd, dir, r->readd_waiter);
    if (r->extra_fd >= 0) {
        r->extra_rc = ua_poller_add(r->p, r->extra_fd, r->extra_dir, r->extra_waiter);
        r->extra_fd = -1;
    }
}

/* The call that handed out `waiter`, or NULL. */
static const seen *find(const recorder *r, void *waiter)
{
    for (int i = 0; i < r->n && i < 1024; i++)
        if (r->calls[i].waiter == waiter)
            return &r->calls[i];
    return NULL;
}

static int make_pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static void put_byte(int fd)
{
    char c = 'x';
    CHECK_EQ(write(fd, &c, 1), 1);
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_init_and_close(void)
{
    ua_poller p;
    CHECK_EQ(ua_poller_init(&p), 0);
    CHECK(p.epfd >= 0);
    CHECK_EQ(p.nwaiters, 0);
    CHECK(ua_poller_waiter(&p, 0, UA_POLL_READ) == NULL);
    ua_poller_close(&p);
    CHECK_EQ(p.epfd, -1);
    CHECK(p.fds == NULL);
}

static void test_read_waiter_handed_out_only_after_peer_writes(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_WRITE) == NULL);
    CHECK_EQ(p.nwaiters, 1);

    /* Nothing to read yet: a zero timeout just looks. */
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    CHECK_EQ(r.n, 0);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);

    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK_EQ(r.n, 1);
    CHECK(r.calls[0].waiter == WA);
    CHECK_EQ(r.calls[0].fd, sv[0]);
    CHECK_EQ(r.calls[0].dir, UA_POLL_READ);
    CHECK_EQ(r.calls[0].hangup, 0);
    /* One-shot: the slot is empty now, and stays quiet with data pending. */
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == NULL);
    CHECK_EQ(p.nwaiters, 0);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    CHECK_EQ(r.n, 1);

    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_write_waiter_handed_out_at_once(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_WRITE) == WB);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 1);
    CHECK_EQ(r.n, 1);
    CHECK(r.calls[0].waiter == WB);
    CHECK_EQ(r.calls[0].dir, UA_POLL_WRITE);
    CHECK_EQ(r.calls[0].hangup, 0);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_WRITE) == NULL);
    CHECK_EQ(p.nwaiters, 0);
    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_reader_and_writer_on_one_fd(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK_EQ(p.nwaiters, 2);

    /* Writable at once, not readable: only the writer goes. */
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 1);
    CHECK_EQ(r.n, 1);
    CHECK(r.calls[0].waiter == WB);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK_EQ(p.nwaiters, 1);

    /* Now readable: the reader goes. */
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK_EQ(r.n, 2);
    CHECK(r.calls[1].waiter == WA);
    CHECK_EQ(r.calls[1].dir, UA_POLL_READ);

    /* Both ready at once: both go in one wait, each with its direction. */
    r.n = 0;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 2);
    CHECK_EQ(r.n, 2);
    const seen *ra = find(&r, WA), *rb = find(&r, WB);
    CHECK(ra && ra->dir == UA_POLL_READ && ra->fd == sv[0]);
    CHECK(rb && rb->dir == UA_POLL_WRITE && rb->fd == sv[0]);
    CHECK_EQ(p.nwaiters, 0);

    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_taken_slot_gives_ebusy(void)
{
    ua_poller p;
    ua_poller_init(&p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    errno = 0;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WB), -1);
    CHECK_EQ(errno, EBUSY);
    /* The first waiter keeps the slot; the other direction is still free. */
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    errno = 0;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WC), -1);
    CHECK_EQ(errno, EBUSY);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_WRITE) == WB);
    CHECK_EQ(p.nwaiters, 2);
    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_remove_returns_waiter_and_is_harmless_twice(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK(ua_poller_remove(&p, sv[0], UA_POLL_READ) == WA);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == NULL);
    CHECK_EQ(p.nwaiters, 1);
    CHECK(ua_poller_remove(&p, sv[0], UA_POLL_READ) == NULL);
    CHECK_EQ(p.nwaiters, 1);
    CHECK(ua_poller_remove(&p, sv[0], UA_POLL_WRITE) == WB);
    CHECK(ua_poller_remove(&p, sv[0], UA_POLL_WRITE) == NULL);
    CHECK_EQ(p.nwaiters, 0);
    /* The kernel interest went with them. */
    CHECK_EQ(p.fds[sv[0]].kernel, 0);

    /* A removed reader is not handed out when data comes. */
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    CHECK_EQ(r.n, 0);

    /* Unknown fds: never added, past the table, negative. */
    CHECK(ua_poller_remove(&p, sv[1], UA_POLL_READ) == NULL);
    CHECK(ua_poller_remove(&p, 100000, UA_POLL_WRITE) == NULL);
    CHECK(ua_poller_remove(&p, -1, UA_POLL_READ) == NULL);
    CHECK(ua_poller_waiter(&p, 100000, UA_POLL_READ) == NULL);
    CHECK(ua_poller_waiter(&p, -1, UA_POLL_READ) == NULL);
    CHECK_EQ(p.nwaiters, 0);

    /* And the slot can be used again. */
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WC), 0);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WC);

    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_regular_file_and_directory_are_always_ready(void)
{
    ua_poller p;
    ua_poller_init(&p);
    char path[] = "/tmp/ua_test_poller_XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0))
        return;
    unlink(path);
    CHECK_EQ(ua_poller_add(&p, fd, UA_POLL_READ, WA), UA_POLL_ALWAYS);
    CHECK_EQ(ua_poller_add(&p, fd, UA_POLL_WRITE, WB), UA_POLL_ALWAYS);
    /* Not stored: nothing to remove, nothing counted, nothing handed out. */
    CHECK(ua_poller_waiter(&p, fd, UA_POLL_READ) == NULL);
    CHECK(ua_poller_waiter(&p, fd, UA_POLL_WRITE) == NULL);
    CHECK_EQ(p.nwaiters, 0);
    /* Asking twice is not EBUSY, since nothing was stored. */
    CHECK_EQ(ua_poller_add(&p, fd, UA_POLL_READ, WA), UA_POLL_ALWAYS);
    CHECK(ua_poller_remove(&p, fd, UA_POLL_READ) == NULL);
    recorder r;
    rec_init(&r, &p);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    close(fd);

    int dfd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (CHECK(dfd >= 0)) {
        CHECK_EQ(ua_poller_add(&p, dfd, UA_POLL_READ, WA), UA_POLL_ALWAYS);
        CHECK_EQ(p.nwaiters, 0);
        close(dfd);
    }
    ua_poller_close(&p);
}

static void test_peer_close_wakes_both_waiters_with_hangup(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    /* Fill the socket so the writer really waits until the hangup. */
    char buf[4096];
    memset(buf, 'y', sizeof(buf));
    while (write(sv[0], buf, sizeof(buf)) > 0)
        ;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);

    close(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 2);
    const seen *ra = find(&r, WA), *rb = find(&r, WB);
    CHECK(ra && ra->dir == UA_POLL_READ && ra->hangup);
    CHECK(rb && rb->dir == UA_POLL_WRITE && rb->hangup);
    CHECK_EQ(p.nwaiters, 0);
    /* A hung-up fd with nobody waiting is dropped, not reported forever. */
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    CHECK_EQ(p.fds[sv[0]].kernel, 0);
    CHECK_EQ(ua_poller_poll(&p, 0), 0);

    /* Waiting again on it is answered at once, still as a hangup. */
    r.n = 0;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WC), 0);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WC && r.calls[0].hangup);
    close(sv[0]);
    ua_poller_close(&p);
}

static void test_pipe_error_wakes_writer_with_hangup(void)
{
    /* A pipe whose read end is gone reports EPOLLERR on the write end. */
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int pfd[2];
    if (!CHECK_EQ(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0))
        return;
    char buf[4096];
    memset(buf, 'z', sizeof(buf));
    while (write(pfd[1], buf, sizeof(buf)) > 0)
        ;
    CHECK_EQ(ua_poller_add(&p, pfd[1], UA_POLL_WRITE, WB), 0);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    close(pfd[0]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WB && r.calls[0].hangup);
    close(pfd[1]);
    ua_poller_close(&p);
}

static void test_bad_fd_gives_ebadf(void)
{
    ua_poller p;
    ua_poller_init(&p);
    errno = 0;
    CHECK_EQ(ua_poller_add(&p, -1, UA_POLL_READ, WA), -1);
    CHECK_EQ(errno, EBADF);
    /* An fd number that is not open. */
    int sv[2];
    if (CHECK_EQ(make_pair(sv), 0)) {
        int closed = sv[1];
        close(closed);
        errno = 0;
        CHECK_EQ(ua_poller_add(&p, closed, UA_POLL_READ, WA), -1);
        CHECK_EQ(errno, EBADF);
        CHECK(ua_poller_waiter(&p, closed, UA_POLL_READ) == NULL);
        close(sv[0]);
    }
    CHECK_EQ(p.nwaiters, 0);
    ua_poller_close(&p);
}

static void test_waiter_added_again_after_hand_out(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    /* The server pattern: read, then wait again while still registered. */
    for (int round = 0; round < 5; round++) {
        r.n = 0;
        CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
        CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
        put_byte(sv[1]);
        CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
        CHECK(r.n == 1 && r.calls[0].waiter == WA);
        /* Lazily kept: the kernel still has the fd after the hand-out. */
        CHECK(p.fds[sv[0]].kernel & EPOLLIN);
        drain(sv[0]);
    }

    /* An event with nobody waiting drops the kernel interest... */
    put_byte(sv[1]);
    r.n = 0;
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 0);
    CHECK_EQ(r.n, 0);
    CHECK_EQ(p.fds[sv[0]].kernel, 0);
    /* ...and adding again registers it anew; the pending byte is seen. */
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WB), 0);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WB);
    drain(sv[0]);

    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_stale_direction_dropped_other_kept(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    /* A writer handed out leaves EPOLLOUT registered; a reader comes next. */
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_WRITE, WB), 0);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 1);
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(p.fds[sv[0]].kernel, EPOLLIN | EPOLLOUT);
    /* The socket is still writable, with no writer: that interest goes, the
     * reader stays parked and is not handed out. */
    r.n = 0;
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    CHECK_EQ(r.n, 0);
    CHECK_EQ(p.fds[sv[0]].kernel, EPOLLIN);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    /* No busy loop: the next look finds nothing at all. */
    CHECK_EQ(ua_poller_poll(&p, 0), 0);
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WA);
    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_timeout_blocks_about_that_long(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    int64_t t0 = now_ms();
    CHECK_EQ(ua_poller_wait(&p, 50, on_ready, &r), 0);
    int64_t waited = now_ms() - t0;
    CHECK(waited >= 49);
    CHECK(waited < 5000);

    t0 = now_ms();
    CHECK_EQ(ua_poller_poll(&p, 30), 0);
    waited = now_ms() - t0;
    CHECK(waited >= 29);
    CHECK(waited < 5000);

    /* Even with no fd at all. */
    ua_poller_remove(&p, sv[0], UA_POLL_READ);
    t0 = now_ms();
    CHECK_EQ(ua_poller_wait(&p, 20, on_ready, &r), 0);
    CHECK(now_ms() - t0 >= 19);
    CHECK_EQ(r.n, 0);
    close(sv[0]);
    close(sv[1]);
    ua_poller_close(&p);
}

static void test_poll_then_dispatch(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2], sw[2];
    if (!CHECK_EQ(make_pair(sv), 0) || !CHECK_EQ(make_pair(sw), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, sw[0], UA_POLL_READ, WB), 0);
    CHECK_EQ(ua_poller_poll(&p, 0), 0);
    CHECK_EQ(ua_poller_dispatch(&p, on_ready, &r), 0);

    put_byte(sv[1]);
    put_byte(sw[1]);
    /* Polling only stores events: the waiters stay in their slots. */
    CHECK_EQ(ua_poller_poll(&p, 1000), 2);
    CHECK_EQ(p.nevents, 2);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK(ua_poller_waiter(&p, sw[0], UA_POLL_READ) == WB);
    CHECK_EQ(p.nwaiters, 2);
    CHECK_EQ(r.n, 0);

    /* A waiter removed between poll and dispatch is not handed out. */
    CHECK(ua_poller_remove(&p, sw[0], UA_POLL_READ) == WB);
    CHECK_EQ(ua_poller_dispatch(&p, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WA);
    CHECK_EQ(p.nwaiters, 0);
    /* The stored events are used up. */
    CHECK_EQ(p.nevents, 0);
    CHECK_EQ(ua_poller_dispatch(&p, on_ready, &r), 0);
    CHECK_EQ(r.n, 1);

    close(sv[0]);
    close(sv[1]);
    close(sw[0]);
    close(sw[1]);
    ua_poller_close(&p);
}

static void test_ready_callback_may_add_the_waiter_again(void)
{
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    r.readd_fd = sv[0];
    r.readd_dir = UA_POLL_READ;
    r.readd_waiter = WA;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK_EQ(p.nwaiters, 1);
    drain(sv[0]);
    CHECK_EQ(ua_poller_wait(&p, 0, on_ready, &r), 0);
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK_EQ(r.n, 2);

    /* After a hangup too: the re-added waiter must not be forgotten. */
    close(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 3 && r.calls[2].hangup);
    r.readd_fd = -1;
    CHECK(ua_poller_waiter(&p, sv[0], UA_POLL_READ) == WA);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 4 && r.calls[3].waiter == WA && r.calls[3].hangup);
    CHECK_EQ(p.nwaiters, 0);
    close(sv[0]);
    ua_poller_close(&p);
}

static void test_ready_callback_may_add_a_waiter_on_a_high_fd(void)
{
    /* The callback parks a waiter on an fd far past the poller's table, so
     * the table is reallocated in the middle of dispatching. */
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    int high = fcntl(sv[0], F_DUPFD_CLOEXEC, 900);
    if (!CHECK(high >= 900)) {
        close(sv[0]);
        close(sv[1]);
        return;
    }
    int tw[2];
    if (!CHECK_EQ(make_pair(tw), 0))
        return;
    /* Reader and writer on a low fd, both ready in the same event. */
    put_byte(tw[1]);
    CHECK_EQ(ua_poller_add(&p, tw[0], UA_POLL_READ, WA), 0);
    CHECK_EQ(ua_poller_add(&p, tw[0], UA_POLL_WRITE, WB), 0);
    r.extra_fd = high;
    r.extra_dir = UA_POLL_READ;
    r.extra_waiter = WC;
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 2);
    CHECK_EQ(r.extra_rc, 0);
    CHECK(find(&r, WA) && find(&r, WB));
    CHECK(ua_poller_waiter(&p, high, UA_POLL_READ) == WC);
    CHECK(ua_poller_waiter(&p, tw[0], UA_POLL_READ) == NULL);
    CHECK(ua_poller_waiter(&p, tw[0], UA_POLL_WRITE) == NULL);
    CHECK_EQ(p.nwaiters, 1);
    r.n = 0;
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WC && r.calls[0].fd == high);
    close(high);
    close(sv[0]);
    close(sv[1]);
    close(tw[0]);
    close(tw[1]);
    ua_poller_close(&p);
}

/* A new socket pair takes the number `old` a closed fd had: a waiter (WB,
 * for `owner`) parked on it must be woken by the kernel's news of it. */
static void check_reused_fd_wakes(ua_poller *p, recorder *r, int old, uint64_t owner)
{
    int nv[2];
    if (!CHECK_EQ(make_pair(nv), 0))
        return;
    int fd = nv[0] == old ? nv[0] : nv[1] == old ? nv[1] : -1;
    int peer = fd == nv[0] ? nv[1] : nv[0];
    if (CHECK(fd == old)) {
        r->n = 0;
        CHECK_EQ(ua_poller_add_owned(p, fd, UA_POLL_READ, WB, owner), 0);
        put_byte(peer);
        CHECK_EQ(ua_poller_wait(p, 200, on_ready, r), 1);
        CHECK(r->n == 1 && r->calls[0].waiter == WB);
    }
    close(nv[0]);
    close(nv[1]);
}

static void test_fd_closed_and_reused_while_lazily_registered(void)
{
    /* A reader is handed out (the fd stays registered, lazily), then the
     * socket is closed without remove, and a new socket gets the same fd
     * number. Closing took the fd out of the epoll set, so a waiter parked
     * on the new socket must still be woken. */
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    int old = sv[0];
    close(sv[0]);
    close(sv[1]);
    check_reused_fd_wakes(&p, &r, old, 0);
    ua_poller_close(&p);
}

static void test_owned_waits_again_and_forget_drops_the_owner(void)
{
    /* An owner waits, is handed out, waits again (its lazily kept
     * registration trusted) and is woken again. Then the fd is forgotten
     * (closed through the poller), closed, and its number reused: the same
     * owner token parked on the new socket must still be woken. */
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2];
    if (!CHECK_EQ(make_pair(sv), 0))
        return;
    for (int round = 0; round < 3; round++) {
        r.n = 0;
        CHECK_EQ(ua_poller_add_owned(&p, sv[0], UA_POLL_READ, WA, 7), 0);
        put_byte(sv[1]);
        CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
        CHECK(r.n == 1 && r.calls[0].waiter == WA);
        char c;
        CHECK_EQ(read(sv[0], &c, 1), 1);
    }
    int old = sv[0];
    void *w[2];
    ua_poller_forget(&p, sv[0], w);
    close(sv[0]);
    close(sv[1]);
    check_reused_fd_wakes(&p, &r, old, 7);
    ua_poller_close(&p);
}

static void test_fd_closed_while_a_dup_lives_on_stops_waking(void)
{
    /* The fd is registered (lazily, after a hand-out), then closed while a
     * dup() keeps the socket open: the kernel keeps reporting it under the
     * old number, where epoll_ctl cannot remove it. The poller must stop
     * being woken by it, and keep serving the waiters it does have. */
    ua_poller p;
    ua_poller_init(&p);
    recorder r;
    rec_init(&r, &p);
    int sv[2], other[2];
    if (!CHECK_EQ(make_pair(sv), 0) || !CHECK_EQ(make_pair(other), 0))
        return;
    CHECK_EQ(ua_poller_add(&p, sv[0], UA_POLL_READ, WA), 0);
    put_byte(sv[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    drain(sv[0]);
    CHECK_EQ(ua_poller_add(&p, other[0], UA_POLL_READ, WB), 0);

    int dup_fd = dup(sv[0]);
    CHECK(dup_fd >= 0);
    close(sv[0]);
    put_byte(sv[1]);   /* readable again, on the closed number */
    r.n = 0;
    int events = 0;
    for (int i = 0; i < 3; i++) {
        int n = ua_poller_poll(&p, 0);
        CHECK(n >= 0);
        events += n;
        CHECK_EQ(ua_poller_dispatch(&p, on_ready, &r), 0);
    }
    /* At most the first look sees it; afterwards the set is clean. */
    CHECK(events <= 1);
    CHECK_EQ(ua_poller_poll(&p, 0), 0);
    CHECK_EQ(r.n, 0);
    /* The other fd's reader survived whatever the poller did about it. */
    CHECK(ua_poller_waiter(&p, other[0], UA_POLL_READ) == WB);
    put_byte(other[1]);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 1 && r.calls[0].waiter == WB);
    /* And the dup itself can be waited on. */
    CHECK_EQ(ua_poller_add(&p, dup_fd, UA_POLL_READ, WC), 0);
    CHECK_EQ(ua_poller_wait(&p, 1000, on_ready, &r), 1);
    CHECK(r.n == 2 && r.calls[1].waiter == WC && r.calls[1].fd == dup_fd);
    close(dup_fd);
    close(sv[1]);
    close(other[0]);
    close(other[1]);
    ua_poller_close(&p);
}

static void test_more_ready_fds_than_one_batch(void)
{
    /* More ready fds than one epoll_wait returns (256 now): none may be
     * lost. As many pairs as the fd limit allows, up to 600. */
    enum { MAX_PAIRS = 600 };
    int pairs = MAX_PAIRS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * MAX_PAIRS + 64)
        pairs = rl.rlim_cur > 64 ? (int)(rl.rlim_cur - 64) / 2 : 0;
    if (pairs < 300)
        printf("note: test_more_ready_fds_than_one_batch uses only %d pairs\n", pairs);
    static int fds[MAX_PAIRS][2];
    static char tokens[MAX_PAIRS];
    ua_poller p;
    ua_poller_init(&p);
    static recorder r;
    rec_init(&r, &p);
    int made = 0;
    for (; made < pairs; made++) {
        if (make_pair(fds[made]) < 0)
            break;
        CHECK_EQ(ua_poller_add(&p, fds[made][0], UA_POLL_READ, &tokens[made]), 0);
        put_byte(fds[made][1]);
    }
    CHECK_EQ(made, pairs);
    CHECK_EQ(p.nwaiters, made);
    int total = 0, rounds = 0;
    while (total < made && rounds < 100) {
        int n = ua_poller_wait(&p, 1000, on_ready, &r);
        if (!CHECK(n > 0))
            break;
        total += n;
        rounds++;
    }
    CHECK_EQ(total, made);
    CHECK_EQ(p.nwaiters, 0);
    /* Each waiter came out once, with its own fd. */
    static char got[MAX_PAIRS];
    int ok = 1;
    for (int i = 0; i < r.n && i < 1024 && ok; i++) {
        int k = (int)((char *)r.calls[i].waiter - tokens);
        ok = CHECK(k >= 0 && k < made) && CHECK(!got[k]) && CHECK_EQ(r.calls[i].fd, fds[k][0]);
        if (ok)
            got[k] = 1;
    }
    for (int i = 0; i < made; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
    ua_poller_close(&p);
}

int main(void)
{
    RUN(test_init_and_close);
    RUN(test_read_waiter_handed_out_only_after_peer_writes);
    RUN(test_write_waiter_handed_out_at_once);
    RUN(test_reader_and_writer_on_one_fd);
    RUN(test_taken_slot_gives_ebusy);
    RUN(test_remove_returns_waiter_and_is_harmless_twice);
    RUN(test_regular_file_and_directory_are_always_ready);
    RUN(test_peer_close_wakes_both_waiters_with_hangup);
    RUN(test_pipe_error_wakes_writer_with_hangup);
    RUN(test_bad_fd_gives_ebadf);
    RUN(test_waiter_added_again_after_hand_out);
    RUN(test_stale_direction_dropped_other_kept);
    RUN(test_timeout_blocks_about_that_long);
    RUN(test_poll_then_dispatch);
    RUN(test_ready_callback_may_add_the_waiter_again);
    RUN(test_ready_callback_may_add_a_waiter_on_a_high_fd);
    RUN(test_fd_closed_and_reused_while_lazily_registered);
    RUN(test_fd_closed_while_a_dup_lives_on_stops_waking);
    RUN(test_owned_waits_again_and_forget_drops_the_owner);
    RUN(test_more_ready_fds_than_one_batch);
    return check_summary("test_poller");
}
