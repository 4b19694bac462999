/* Linux epoll backend of the poller (see poller.h). */
#include "poller.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 256

static const uint32_t dir_events[2] = {EPOLLIN, EPOLLOUT};

int ua_poller_init(ua_poller *p)
{
    memset(p, 0, sizeof(*p));
    p->epfd = -1;
    p->wake_fd = -1;
    p->events = malloc(MAX_EVENTS * sizeof(struct epoll_event));
    if (!p->events) {
        errno = ENOMEM;
        return -1;
    }
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        free(p->events);
        p->events = NULL;
        return -1;
    }
    return 0;
}

void ua_poller_close(ua_poller *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    free(p->fds);
    free(p->events);
    memset(p, 0, sizeof(*p));
    p->epfd = -1;
    p->wake_fd = -1;
}

static int watch_wakeup(ua_poller *p)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->wake_fd};
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev);
}

int ua_poller_set_wakeup(ua_poller *p, int fd)
{
    p->wake_fd = fd;
    if (watch_wakeup(p) < 0) {
        p->wake_fd = -1;
        return -1;
    }
    return 0;
}

static int ensure_slot(ua_poller *p, int fd)
{
    if (fd < p->nfds)
        return 0;
    int n = p->nfds ? p->nfds : 64;
    while (n <= fd)
        n *= 2;
    ua_poll_fd *fds = realloc(p->fds, (size_t)n * sizeof(*fds));
    if (!fds) {
        errno = ENOMEM;
        return -1;
    }
    memset(fds + p->nfds, 0, (size_t)(n - p->nfds) * sizeof(*fds));
    p->fds = fds;
    p->nfds = n;
    return 0;
}

/* Make the kernel's interest in fd equal to want. An fd closed and reused
 * behind our back shows as ENOENT/EEXIST: retry with the other operation. */
static int set_kernel(ua_poller *p, int fd, uint32_t want)
{
    ua_poll_fd *s = &p->fds[fd];
    if (want == s->kernel)
        return 0;
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int rc;
    if (!want) {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
        s->kernel = 0;
        return (rc < 0 && errno != ENOENT && errno != EBADF) ? -1 : 0;
    }
    if (!s->kernel) {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc < 0 && errno == EEXIST)
            rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
    } else {
        rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc < 0 && errno == ENOENT)
            rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (rc < 0)
        return -1;
    s->kernel = want;
    return 0;
}

int ua_poller_add(ua_poller *p, int fd, int dir, void *waiter)
{
    return ua_poller_add_owned(p, fd, dir, waiter, 0);
}

int ua_poller_add_owned(ua_poller *p, int fd, int dir, void *waiter, uint64_t owner)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (ensure_slot(p, fd) < 0)
        return -1;
    ua_poll_fd *s = &p->fds[fd];
    if (s->waiter[dir]) {
        errno = EBUSY;
        return -1;
    }
    /* With no waiter left, the fd may have been closed and its number reused
     * since the kernel last heard of it: re-arm it for real (MOD, or ADD on
     * ENOENT) rather than trusting the lazily kept registration, unless
     * the owner that made it says the fd stayed open since. */
    int rc;
    if (!s->waiter[0] && !s->waiter[1] && s->kernel && !(owner && s->owner == owner)) {
        struct epoll_event ev = {.events = s->kernel | dir_events[dir], .data.fd = fd};
        rc = epoll_ctl(p->epfd, EPOLL_CTL_MOD, fd, &ev);
        if (rc < 0 && errno == ENOENT)
            rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
        if (rc == 0)
            s->kernel = ev.events;
    } else {
        rc = set_kernel(p, fd, s->kernel | dir_events[dir]);
    }
    if (rc < 0) {
        if (errno == EPERM)   /* regular file or directory: always ready */
            return UA_POLL_ALWAYS;
        return -1;
    }
    s->owner = owner;
    s->waiter[dir] = waiter;
    p->nwaiters++;
    return 0;
}

void *ua_poller_waiter(const ua_poller *p, int fd, int dir)
{
    return (fd >= 0 && fd < p->nfds) ? p->fds[fd].waiter[dir] : NULL;
}

void *ua_poller_remove(ua_poller *p, int fd, int dir)
{
    if (fd < 0 || fd >= p->nfds)
        return NULL;
    ua_poll_fd *s = &p->fds[fd];
    void *waiter = s->waiter[dir];
    if (waiter) {
        s->waiter[dir] = NULL;
        p->nwaiters--;
    }
    set_kernel(p, fd, s->kernel & ~dir_events[dir]);
    return waiter;
}

/* An fd closed while a dup() of it lives on stays in the epoll set under
 * its old number, where no epoll_ctl can reach it, and would wake us for
 * ever. Start a new set holding only what is waited on. Rare: O(fds). */
static int rebuild(ua_poller *p)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -1;
    close(p->epfd);
    p->epfd = epfd;
    p->stale = 0;
    if (p->wake_fd >= 0)
        watch_wakeup(p);
    for (int fd = 0; fd < p->nfds; fd++) {
        ua_poll_fd *s = &p->fds[fd];
        s->kernel = 0;
        uint32_t want = (s->waiter[0] ? EPOLLIN : 0) | (s->waiter[1] ? EPOLLOUT : 0);
        if (want)
            set_kernel(p, fd, want);   /* a closed fd's waiter just never fires */
    }
    return 0;
}

int ua_poller_poll(ua_poller *p, int timeout_ms)
{
    if (p->stale && rebuild(p) < 0)
        return -1;
    int n = epoll_wait(p->epfd, p->events, MAX_EVENTS, timeout_ms);
    p->nevents = n > 0 ? n : 0;
    return n;
}

int ua_poller_dispatch(ua_poller *p, ua_poll_ready_fn ready, void *ctx)
{
    struct epoll_event *events = p->events;
    int n = p->nevents;
    p->nevents = 0;
    int handed = 0;
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        uint32_t ev = events[i].events;
        if (fd == p->wake_fd) {
            p->woken = 1;
            continue;
        }
        if (fd >= p->nfds)
            continue;
        ua_poll_fd *s = &p->fds[fd];
        int hangup = (ev & (EPOLLHUP | EPOLLERR)) != 0;
        uint32_t keep = s->kernel;
        for (int dir = 0; dir < 2; dir++) {
            if (!(ev & dir_events[dir]) && !hangup)
                continue;
            void *w = s->waiter[dir];
            if (w) {
                s->waiter[dir] = NULL;
                p->nwaiters--;
                ready(ctx, w, fd, dir, hangup);
                s = &p->fds[fd];   /* ready() may have grown the table */
                handed++;
            } else {
                /* Nobody waits in this direction any more: drop it now. */
                keep &= ~dir_events[dir];
            }
        }
        /* A hung-up fd would be reported forever: unregister it. */
        if (hangup)
            keep = 0;
        /* ready() may have parked a new waiter on this fd: keep its interest. */
        for (int dir = 0; dir < 2; dir++)
            if (s->waiter[dir])
                keep |= dir_events[dir];
        if (keep == s->kernel)
            continue;
        if (!keep) {
            if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && (errno == EBADF || errno == ENOENT))
                p->stale = 1;   /* reported, yet not removable under this number */
            s->kernel = 0;
        } else {
            set_kernel(p, fd, keep);
        }
    }
    return handed;
}

void ua_poller_forget(ua_poller *p, int fd, void *waiters[2])
{
    waiters[0] = waiters[1] = NULL;
    if (fd < 0 || fd >= p->nfds)
        return;
    ua_poll_fd *s = &p->fds[fd];
    for (int dir = 0; dir < 2; dir++) {
        waiters[dir] = s->waiter[dir];
        if (s->waiter[dir]) {
            s->waiter[dir] = NULL;
            p->nwaiters--;
        }
    }
    s->kernel = 0;
    s->owner = 0;
}

int ua_poller_wait(ua_poller *p, int timeout_ms, ua_poll_ready_fn ready, void *ctx)
{
    int n = ua_poller_poll(p, timeout_ms);
    if (n < 0)
        return -1;
    return ua_poller_dispatch(p, ready, ctx);
}
