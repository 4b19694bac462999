/* The poller: which fds a waiter is parked on, and blocking until one is
 * ready or a timeout passes. One backend per file (poller_epoll.c on Linux).
 *
 * Each fd has two slots, read and write, each holding at most one opaque
 * waiter. Registration is one-shot from the caller's view: when an fd is
 * ready, the waiter is taken out of its slot and handed to the ready
 * callback; the caller must add it again to wait again.
 *
 * Kernel interest is dropped lazily: after a waiter is handed out, the fd stays
 * registered until an event arrives with no waiter for it. A task that reads,
 * answers and waits again (the common server case) then costs no epoll_ctl
 * at all. */
#ifndef UA_POLLER_H
#define UA_POLLER_H

#include <stdint.h>

enum { UA_POLL_READ = 0, UA_POLL_WRITE = 1 };

/* ua_poller_add() result for an fd the kernel cannot poll (a regular file):
 * it is always ready, and the waiter was not stored. */
#define UA_POLL_ALWAYS 1

typedef struct ua_poll_fd {
    void *waiter[2];    /* read, write */
    uint32_t kernel;    /* epoll events registered now; 0 = not in the set */
    uint64_t owner;     /* who made that registration (ua_poller_add_owned), or 0 */
} ua_poll_fd;

typedef struct ua_poller {
    int epfd;
    int nfds;           /* slots in fds */
    ua_poll_fd *fds;    /* indexed by fd */
    int nwaiters;       /* waiters stored now */
    void *events;       /* the backend's buffer of ready events */
    int nevents;        /* events in it not yet dispatched */
    int stale;          /* the kernel holds a registration we cannot remove */
    int wake_fd;        /* watched for reading for good, never handed out; or -1 */
    int woken;          /* set by dispatch when wake_fd was ready */
} ua_poller;

/* Called for each waiter made ready; hangup is nonzero on POLLHUP/POLLERR. */
typedef void (*ua_poll_ready_fn)(void *ctx, void *waiter, int fd, int dir, int hangup);

int ua_poller_init(ua_poller *p);              /* 0, or -1 with errno */
void ua_poller_close(ua_poller *p);

/* Watch fd (a wake-up pipe's read end) for reading from now on, without a
 * waiter: when it is ready, dispatch sets p->woken instead of handing out
 * anything; the caller drains fd and clears p->woken. 0, or -1 with errno. */
int ua_poller_set_wakeup(ua_poller *p, int fd);

/* Park a waiter on fd for dir. 0; UA_POLL_ALWAYS; -1 with errno (EBADF,
 * EBUSY if the slot is taken, ENOMEM). */
int ua_poller_add(ua_poller *p, int fd, int dir, void *waiter);

/* ua_poller_add() for a caller that names itself (owner != 0) and keeps fd
 * open between its waits: when the lazily kept registration is its own,
 * it is trusted as is, saving the epoll_ctl that re-checks it (one per wait
 * of a connection that reads, answers and waits again). An fd closed
 * through the poller (ua_poller_forget) loses its owner. */
int ua_poller_add_owned(ua_poller *p, int fd, int dir, void *waiter, uint64_t owner);

/* The waiter parked on fd for dir, or NULL. */
void *ua_poller_waiter(const ua_poller *p, int fd, int dir);

/* Take the waiter out of the slot (NULL if none) and drop the kernel's
 * interest in dir at once. Harmless on an fd that is not registered. */
void *ua_poller_remove(ua_poller *p, int fd, int dir);

/* For an fd about to be closed: take both waiters out (into waiters[2])
 * and forget the fd without an epoll_ctl: closing it takes it out of the
 * kernel's set (a dup() left open is caught by the stale-set rebuild). */
void ua_poller_forget(ua_poller *p, int fd, void *waiters[2]);

/* Block up to timeout_ms (-1: no limit, 0: just look) and store the ready
 * events. Touches only the kernel and the event buffer, so a caller may run
 * it without holding its own lock (CPython: with the GIL released).
 * Returns the number of events, or -1 with errno (EINTR on a signal). */
int ua_poller_poll(ua_poller *p, int timeout_ms);

/* Hand each waiter made ready by the stored events to ready(). Returns the
 * number handed out. */
int ua_poller_dispatch(ua_poller *p, ua_poll_ready_fn ready, void *ctx);

/* ua_poller_poll() then ua_poller_dispatch(). */
int ua_poller_wait(ua_poller *p, int timeout_ms, ua_poll_ready_fn ready, void *ctx);

#endif
