#include "wakeup.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int ua_wakeup_init(ua_wakeup *w)
{
    int fds[2];
    w->rfd = w->wfd = -1;
    atomic_init(&w->pending, 0);
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    w->rfd = fds[0];
    w->wfd = fds[1];
    return 0;
}

void ua_wakeup_close(ua_wakeup *w)
{
    if (w->rfd >= 0)
        close(w->rfd);
    if (w->wfd >= 0)
        close(w->wfd);
    w->rfd = w->wfd = -1;
}

void ua_wakeup_signal(ua_wakeup *w)
{
    /* Only the first wake-up since the last take writes: the byte it
     * leaves makes the poller return, and the loop then takes the flag. */
    if (atomic_exchange(&w->pending, 1))
        return;
    int saved = errno;   /* a signal handler must leave errno alone */
    ssize_t rc;
    do
        rc = write(w->wfd, "", 1);
    while (rc < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full of unread bytes, so the loop wakes anyway. */
    errno = saved;
}

void ua_wakeup_drain(ua_wakeup *w)
{
    char buf[64];
    ssize_t n;
    do
        n = read(w->rfd, buf, sizeof(buf));
    while (n == (ssize_t)sizeof(buf) || (n < 0 && errno == EINTR));
}
