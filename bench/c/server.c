/* Minimal epoll servers, the practical limit the Python servers are
 * compared with. One thread, level-triggered epoll, non-blocking sockets.
 *
 *   server echo PORT [BACKLOG]   echo back every complete line ("\n" ended)
 *   server http PORT [BACKLOG]   read a request up to the blank line, answer
 *                                "Hello" (HTTP/1.0) and close
 *
 * Listens on 127.0.0.1:PORT with SO_REUSEADDR; TCP_NODELAY on every
 * connection, as the Python servers have. Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char RESPONSE[] =
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nHello";

struct conn {
    int fd;
    char *in;               /* bytes read, not yet a complete line/request */
    size_t in_len, in_cap;
    char *out;              /* bytes the kernel did not take yet */
    size_t out_len, out_off, out_cap;
    int closing;            /* http: close once out is flushed */
};

static int epfd, http;

static void drop(struct conn *c)
{
    close(c->fd);           /* also removes it from the epoll set */
    free(c->in);
    free(c->out);
    free(c);
}

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

/* Write out what is queued; 0 all written, 1 would block, -1 failed. */
static int flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
        c->out_off += k;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Queue len bytes and try to send them now. */
static int send_bytes(struct conn *c, const char *p, size_t len)
{
    if (c->out_len == 0) {  /* common case: straight to the kernel */
        while (len) {
            ssize_t k = write(c->fd, p, len);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                return -1;
            }
            p += k;
            len -= k;
        }
        if (!len)
            return 0;
    }
    if (reserve(&c->out, &c->out_cap, c->out_len + len) < 0)
        return -1;
    memcpy(c->out + c->out_len, p, len);
    c->out_len += len;
    return 1;
}

static void set_events(struct conn *c, int out)
{
    struct epoll_event ev = { .events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_readable(struct conn *c)
{
    for (;;) {
        if (reserve(&c->in, &c->in_cap, c->in_len + 65536) < 0) {
            drop(c);
            return;
        }
        ssize_t k = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            drop(c);
            return;
        }
        if (k == 0) {
            drop(c);
            return;
        }
        size_t scan_from = c->in_len;
        c->in_len += k;
        if (http) {
            /* The request ends at the first empty line. */
            size_t from = scan_from >= 3 ? scan_from - 3 : 0;
            char *end = memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4);
            if (!end) {
                from = scan_from >= 1 ? scan_from - 1 : 0;
                end = memmem(c->in + from, c->in_len - from, "\n\n", 2);
            }
            if (!end)
                continue;
            int r = send_bytes(c, RESPONSE, sizeof RESPONSE - 1);
            if (r <= 0) {      /* all sent (or failed): close */
                drop(c);
                return;
            }
            c->closing = 1;
            set_events(c, 1);
            return;
        }
        /* Echo every complete line; keep the partial tail. */
        char *nl = memrchr(c->in + scan_from, '\n', c->in_len - scan_from);
        if (!nl)
            continue;
        size_t n = nl - c->in + 1;
        int r = send_bytes(c, c->in, n);
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        if (r < 0) {
            drop(c);
            return;
        }
        if (r == 1) {       /* stop reading until the echo is out */
            set_events(c, 1);
            return;
        }
    }
}

static void on_writable(struct conn *c)
{
    int r = flush(c);
    if (r < 0 || (r == 0 && c->closing)) {
        drop(c);
        return;
    }
    if (r == 0)
        set_events(c, 0);
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "echo") && strcmp(argv[1], "http"))) {
        fprintf(stderr, "usage: server echo|http PORT [BACKLOG]\n");
        return 1;
    }
    http = !strcmp(argv[1], "http");
    int port = atoi(argv[2]);
    int backlog = argc > 3 ? atoi(argv[3]) : 1024;

    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the runner */
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, backlog) < 0) {
        fprintf(stderr, "bind/listen on port %d: %s\n", port, strerror(errno));
        return 1;
    }
    epfd = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epfd, events, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) {
                for (;;) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE)
                            usleep(1000);
                        break;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT)
                on_writable(c);
            else
                on_readable(c);
        }
    }
}
