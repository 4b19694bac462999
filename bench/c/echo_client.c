/* Line echo load client: N connections, each sends one line of S bytes
 * (S - 1 pattern bytes and "\n"), waits for the whole echo, checks every
 * byte, then sends the next line. One thread, epoll, non-blocking sockets.
 *
 *   echo_client -p PORT [-c CONNS] [-s SIZE] [-S MAXSIZE]
 *               [-d SECONDS | -n ROUNDTRIPS | -r ROUNDS] [-w WARMUP_S]
 *               [-P SERVER_PID] [-t STALL_S] [-H]
 *
 * After every connection is up it runs WARMUP_S seconds unmeasured, then
 * measures for SECONDS (or until ROUNDTRIPS round trips have completed).
 * With -r there is no warm-up: every connection does exactly ROUNDS round
 * trips and the run ends when all have. With -S, line sizes vary from
 * line to line between SIZE and MAXSIZE bytes.
 * With -H, once the run is over and every connection is quiet (all still
 * open), it prints {"held": OPEN_CONNECTIONS} and waits for a line (or EOF)
 * on stdin before closing them: the caller can look at the server while
 * every connection is held.
 * With -P it reads the server's CPU time (/proc/PID/task/TID/schedstat, ns;
 * utime + stime from /proc/PID/stat if unavailable) at both ends of the
 * measured window, so the server CPU figure covers exactly the
 * round trips counted. Prints one JSON line on stdout.
 *
 * A connection that fails (refused, reset, EOF, wrong byte, extra bytes) is
 * counted in "errors" and dropped; the run goes on with the others. If no
 * round trip completes for STALL_S seconds the run stops ("stalled": true).
 * Exit status: 0 if the run completed, 1 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PATTERN_SPAN 251    /* line offsets into the pattern cycle over this */

enum { CONNECTING, SENDING, RECEIVING, IDLE, DEAD };

struct conn {
    int fd;
    int state;
    unsigned off;           /* where this line starts in the pattern */
    size_t sent, got;       /* bytes of the current line sent / echoed */
    size_t len;             /* size of the current line, '\n' included */
    unsigned long long rounds;
    unsigned id;
};

static char *pattern;       /* MAXSIZE + PATTERN_SPAN printable bytes, no '\n' */
static char *rxbuf;
static size_t line_size, max_line_size;
static unsigned long long per_conn;     /* -r: round trips per connection */
static int epfd;
static long errors, mismatches, finished;
static char first_error[160];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
         + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* CPU time of a process in seconds, -1 if unreadable: the sum of its
 * threads' run time from /proc/PID/task/TID/schedstat (nanoseconds), or
 * utime + stime from /proc/PID/stat (clock ticks) where schedstat is not
 * available. */
static double cpu_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d) {
        unsigned long long sum = 0, ns;
        int found = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(buf, sizeof buf, "/proc/%d/task/%s/schedstat", pid, e->d_name);
            FILE *f = fopen(buf, "r");
            if (!f)
                continue;
            if (fscanf(f, "%llu", &ns) == 1) {
                sum += ns;
                found = 1;
            }
            fclose(f);
        }
        closedir(d);
        if (found && sum > 0)
            return sum / 1e9;
    }
    unsigned long ut, st;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                     &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / sysconf(_SC_CLK_TCK);
}

static void fail(struct conn *c, const char *what, int err)
{
    if (!errors) {
        if (err)
            snprintf(first_error, sizeof first_error, "%s: %s", what, strerror(err));
        else
            snprintf(first_error, sizeof first_error, "%s", what);
    }
    errors++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = DEAD;
}

static void want_out(struct conn *c, int on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what is left of the current line; 0 done, 1 would block, -1 failed. */
static int send_line(struct conn *c)
{
    while (c->sent < c->len) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->len - 1) {
            iov[n].iov_base = pattern + c->off + c->sent;
            iov[n].iov_len = c->len - 1 - c->sent;
            n++;
        }
        iov[n].iov_base = "\n";
        iov[n].iov_len = 1;
        n++;
        ssize_t k = writev(c->fd, iov, n);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            if (errno == EINTR)
                continue;
            fail(c, "send", errno);
            return -1;
        }
        c->sent += k;
    }
    return 0;
}

static void start_line(struct conn *c)
{
    c->off = (unsigned)((c->rounds * 7 + c->id * 13) % PATTERN_SPAN);
    c->len = line_size;
    if (max_line_size > line_size)
        c->len += (size_t)((c->rounds * 7919 + c->id * 104729) % (max_line_size - line_size + 1));
    c->sent = c->got = 0;
    c->state = SENDING;
    int r = send_line(c);
    if (r == 0)
        c->state = RECEIVING;
    else if (r == 1)
        want_out(c, 1);
}

/* Read echoed bytes; returns 1 when the line is complete and correct. */
static int receive(struct conn *c)
{
    for (;;) {
        /* Ask for one byte more than expected, to catch extra bytes. */
        size_t want = c->len - c->got + 1;
        ssize_t k = read(c->fd, rxbuf, want);
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            fail(c, "recv", errno);
            return 0;
        }
        if (k == 0) {
            fail(c, "server closed the connection", 0);
            return 0;
        }
        if (c->got + k > c->len) {
            mismatches++;
            fail(c, "more bytes echoed than sent", 0);
            return 0;
        }
        /* Compare against what was sent at these positions. */
        size_t pos = c->got, end = c->got + k;
        size_t body_end = end < c->len - 1 ? end : c->len - 1;
        if (pos < body_end && memcmp(rxbuf, pattern + c->off + pos, body_end - pos)) {
            mismatches++;
            fail(c, "echoed bytes differ from the line sent", 0);
            return 0;
        }
        if (end == c->len && rxbuf[k - 1] != '\n') {
            mismatches++;
            fail(c, "echoed line does not end with the newline sent", 0);
            return 0;
        }
        c->got = end;
        if (c->got == c->len)
            return 1;
    }
}

/* One batch of epoll events. A connection whose echo is complete starts its
 * next line, or goes IDLE when `stopping` or when it has done its -r round
 * trips. Returns the round trips done; adds the bytes echoed to *bytes. */
static unsigned long long handle(struct epoll_event *events, int n, int stopping,
                                 unsigned long long *bytes)
{
    unsigned long long done = 0;
    for (int i = 0; i < n; i++) {
        struct conn *c = events[i].data.ptr;
        if (c->state == DEAD || c->state == IDLE)
            continue;
        if (c->state == SENDING && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            int r = send_line(c);
            if (r < 0)
                continue;
            if (r == 0) {
                c->state = RECEIVING;
                want_out(c, 0);
            }
        }
        if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            if (receive(c)) {
                if (c->sent != c->len) {
                    mismatches++;
                    fail(c, "echo complete before the line was sent", 0);
                    continue;
                }
                c->rounds++;
                done++;
                *bytes += c->len;
                if (per_conn && c->rounds >= per_conn) {
                    c->state = IDLE;
                    finished++;
                } else if (stopping) {
                    c->state = IDLE;
                } else {
                    start_line(c);
                }
            }
        }
    }
    return done;
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_client -p PORT [-h HOST] [-c CONNS] [-s SIZE] [-S MAXSIZE] "
                    "[-d SECONDS | -n ROUNDTRIPS | -r ROUNDS] [-w WARMUP_S] [-P SERVER_PID] "
                    "[-t STALL_S] [-H]\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, nconns = 10, server_pid = 0, hold = 0, opt;
    double duration = 5, warmup = 1, stall = 5;
    unsigned long long target = 0;
    line_size = 100;

    prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive the runner */
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "h:p:c:s:S:d:n:r:w:P:t:H")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 's': line_size = strtoul(optarg, NULL, 10); break;
        case 'S': max_line_size = strtoul(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        case 'n': target = strtoull(optarg, NULL, 10); break;
        case 'r': per_conn = strtoull(optarg, NULL, 10); break;
        case 'w': warmup = atof(optarg); break;
        case 'P': server_pid = atoi(optarg); break;
        case 't': stall = atof(optarg); break;
        case 'H': hold = 1; break;
        default: usage();
        }
    }
    if (port <= 0 || nconns <= 0 || line_size < 1)
        usage();
    if (max_line_size < line_size)
        max_line_size = line_size;
    if (per_conn)
        warmup = 0;

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)nconns + 16) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    pattern = malloc(max_line_size + PATTERN_SPAN);
    rxbuf = malloc(max_line_size + 1);
    struct conn *conns = calloc(nconns, sizeof *conns);
    struct epoll_event *events = malloc(nconns * sizeof *events);
    if (!pattern || !rxbuf || !conns || !events) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < max_line_size + PATTERN_SPAN; i++)
        pattern[i] = 33 + (char)((i * 131 + i / 89) % 94);   /* printable, never '\n' */

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad host %s\n", host);
        return 1;
    }
    epfd = epoll_create1(0);

    /* Connect everything first; nothing is measured until all are up. */
    int pending = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
            fprintf(stderr, "socket: %s\n", strerror(errno));
            return 1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->state = CONNECTING;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
            fail(c, "connect", errno);
            continue;
        }
        pending++;
    }
    double t_connect = now();
    while (pending > 0) {
        int n = epoll_wait(epfd, events, nconns, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->state != CONNECTING)
                continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            pending--;
            if (err) {
                fail(c, "connect", err);
                continue;
            }
            c->state = SENDING;
            want_out(c, 0);
        }
        if (now() - t_connect > stall + 5) {
            fprintf(stderr, "%d connections still not up after %.0f s\n", pending, stall + 5);
            return 1;
        }
    }
    double connect_s = now() - t_connect;
    for (int i = 0; i < nconns; i++)
        if (conns[i].state == SENDING)
            start_line(&conns[i]);

    /* Run: warm up, then the measured window. */
    unsigned long long total = 0, total0 = 0, bytes = 0, bytes0 = 0;
    double t0 = now(), t_start = t0 + warmup, t_end = 0, t_last = t0;
    double srv0 = -1, srv1 = -1, cli0 = 0, cli1 = 0, t_meas0 = 0;
    int measuring = 0, stalled = 0;
    if (warmup <= 0) {   /* measure from the first round trip on */
        measuring = 1;
        t_meas0 = t0;
        srv0 = server_pid ? cpu_of(server_pid) : -1;
        cli0 = cpu_self();
    }
    for (;;) {
        int n = epoll_wait(epfd, events, nconns, 50);
        unsigned long long k = handle(events, n, 0, &bytes);
        double t = now();
        total += k;
        if (k)
            t_last = t;
        if (!measuring && t >= t_start) {
            measuring = 1;
            total0 = total;
            bytes0 = bytes;
            t_meas0 = t;
            srv0 = server_pid ? cpu_of(server_pid) : -1;
            cli0 = cpu_self();
        }
        int alive = 0;
        for (int i = 0; i < nconns && !alive; i++)
            alive = conns[i].state != DEAD;
        int done = !alive;
        if (per_conn)
            done = done || finished + errors >= nconns;
        else if (measuring)
            done = done || (target ? total - total0 >= target : t - t_meas0 >= duration);
        if (!done && t - t_last > stall) {
            stalled = 1;
            done = 1;
        }
        if (done) {
            t_end = t;
            srv1 = server_pid ? cpu_of(server_pid) : -1;
            cli1 = cpu_self();
            if (!measuring) {   /* ended during warm-up: nothing measured */
                t_meas0 = t_end;
                total0 = total;
                bytes0 = bytes;
                srv0 = srv1;
                cli0 = cli1;
            }
            break;
        }
    }

    /* Let the lines in flight come back before closing, so that no
     * connection is closed with unread data (which would reset it). */
    double t_drain = now();
    for (;;) {
        int busy = 0;
        for (int i = 0; i < nconns; i++)
            busy += conns[i].state == SENDING || conns[i].state == RECEIVING;
        if (!busy || now() - t_drain > 2)
            break;
        int n = epoll_wait(epfd, events, nconns, 50);
        unsigned long long unmeasured = 0;
        handle(events, n, 1, &unmeasured);
    }

    if (hold) {
        int open = 0;
        for (int i = 0; i < nconns; i++)
            open += conns[i].state != DEAD;
        printf("{\"held\": %d}\n", open);
        fflush(stdout);
        char buf[64];
        while (read(0, buf, sizeof buf) < 0 && errno == EINTR)
            ;   /* a line or EOF: either way, close */
    }

    unsigned long long measured = total - total0;
    double secs = t_end - t_meas0;
    int alive = 0;
    unsigned long long min_rounds = 0, max_rounds = 0;
    for (int i = 0; i < nconns; i++) {
        if (conns[i].state != DEAD) {
            if (!alive || conns[i].rounds < min_rounds)
                min_rounds = conns[i].rounds;
            if (conns[i].rounds > max_rounds)
                max_rounds = conns[i].rounds;
            alive++;
            close(conns[i].fd);
        }
    }
    double srv_cpu = (srv0 >= 0 && srv1 >= 0) ? srv1 - srv0 : -1;
    printf("{\"connections\": %d, \"line_size\": %zu, \"max_line_size\": %zu, "
           "\"connect_s\": %.6f, \"warmup_s\": %.3f, "
           "\"roundtrips\": %llu, \"seconds\": %.6f, \"rt_per_s\": %.3f, "
           "\"bytes_each_way\": %llu, \"server_cpu_s\": %.3f, \"client_cpu_s\": %.3f, "
           "\"errors\": %ld, \"mismatches\": %ld, \"alive\": %d, \"stalled\": %s, "
           "\"min_rounds\": %llu, \"max_rounds\": %llu, \"first_error\": \"%s\"}\n",
           nconns, line_size, max_line_size, connect_s, warmup, measured, secs,
           secs > 0 ? measured / secs : 0.0, bytes - bytes0,
           srv_cpu, cli1 - cli0, errors, mismatches, alive, stalled ? "true" : "false",
           min_rounds, max_rounds, first_error);
    return 0;
}
