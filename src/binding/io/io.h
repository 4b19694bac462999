/* What io/ offers: the stream buffers and the one read or write both
 * APIs' streams make (StreamReader, StreamWriter, uasyncio.v3's Stream),
 * the awaitables their methods return, and the accept loop both
 * start_server()s share; and the ready functions of UDP and WebSocket. */
#ifndef UA_IO_H
#define UA_IO_H

#include "loop/loop.h"
#include "linebuf.h"

#include <sys/socket.h>
#include <netinet/in.h>

/* How a stream reaches its data. */
enum {
    IO_FD,        /* a plain socket: recv()/send() on its fd, in C */
    IO_TRYFIRST,  /* a non-blocking Python object (an SSL socket): call it first, wait when it says so */
    IO_PY,        /* any object with read/readline/write: wait, then call it (as uasyncio 2.0) */
    IO_WS,        /* a WebSocket's payloads (ws.c reads them; no fill() here) */
};

typedef struct {
    PyObject_HEAD
    PyObject *polls;      /* what is polled */
    PyObject *ios;        /* what is read */
    ua_linebuf buf;       /* read but not yet returned (inside a bytes object: ua_pybuf_init) */
    size_t limit;         /* the longest line readline() returns; UA_NO_LIMIT: none */
    uint8_t kind;
    uint8_t eof;
    uint8_t budget;       /* reads left before yielding to other tasks */
    uint32_t epoch;       /* ua_poll_epoch when buf was last known current */
    uint64_t id;          /* ua_stream_id(): names its waits to the poller */
} ReaderObject;

/* get_extra_info()'s dict, made when first asked for. An accepted
 * connection's peer address waits in raw form until then: most servers
 * never ask, and as Python objects it is a dict, a tuple, a str and an int
 * a connection, in time and in memory. */
typedef struct {
    PyObject *dict;       /* NULL until asked for (or given) */
    union {
        struct sockaddr sa;   /* sa_family AF_UNSPEC (0): none waiting */
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
} ua_extra;
/* Keep an accepted connection's peer address for "peername": 0, or -1 with
 * an exception. */
int ua_extra_set_peer(ua_extra *e, const struct sockaddr_storage *ss);
/* The dict, made now if need be (a borrowed reference), or NULL with an
 * exception. */
PyObject *ua_extra_dict(ua_extra *e);

typedef struct {
    PyObject_HEAD
    PyObject *s;
    ua_extra extra;       /* for get_extra_info() */
    uint8_t kind;
} WriterObject;

#define UA_NO_LIMIT ((size_t)-1)

extern PyTypeObject Reader_Type, Writer_Type, StreamOp_Type;
extern PyObject *ua_LimitOverrunError;   /* a ValueError subclass */

/* New stream objects over a socket (the fast path when it is a plain one). */
PyObject *ua_reader_new(PyObject *polls, PyObject *ios);
PyObject *ua_writer_new(PyObject *s);
int ua_streams_ready(PyObject *module);
/* Read more into r->buf (a socket or TLS reader): 1 data or EOF (r->eof),
 * 0 would block (*wait: the syscall to yield), -1 error. */
int ua_reader_fill(ReaderObject *r, PyObject **wait);
/* With an exception set: 1 if it is SSLWantReadError, 2 if SSLWantWriteError
 * (then it is cleared), else 0 (left as it is). */
int ua_ssl_want(void);
/* IORead(obj) for UA_POLL_READ, IOWrite(obj) for UA_POLL_WRITE. */
PyObject *ua_syscall_for(int dir, PyObject *obj);

/* ---- one read or write, as StreamReader/StreamWriter and v3's Stream do it ------ */

enum {
    UA_RD_SOME,     /* up to n bytes (-1: what one read gives); b"" at the end */
    UA_RD_ALL,      /* everything until the end */
    UA_RD_LINE,     /* a line with its b"\n" (over r->limit: LimitOverrunError); at the end the partial line */
    UA_RD_EXACTLY,  /* n bytes; at the end what came, or EOFError (short_raises) */
    UA_RD_INTO,     /* one read into *into: the count (0 at the end) */
};

typedef struct {
    Py_ssize_t n;           /* UA_RD_SOME, UA_RD_EXACTLY */
    Py_buffer *into;        /* UA_RD_INTO: the caller's buffer */
    uint8_t what;
    uint8_t short_raises;   /* UA_RD_EXACTLY: the end first raises EOFError, what came dropped */
    uint8_t say_done;       /* at the end, first yield IOReadDone(polls) (as uasyncio 2.0) */
    uint8_t waited, ended;  /* IO_PY: the wait before the call is done; its read gave b"" */
} ua_read;

/* One step of the read q on r: PYGEN_RETURN with *result, PYGEN_NEXT with
 * what to yield (IORead/IOWrite when the socket has nothing, None to let
 * others run after a burst), PYGEN_ERROR. Nothing leaves r->buf before the
 * read completes, so one abandoned part way loses no byte. */
PySendResult ua_read_step(ReaderObject *r, ua_read *q, PyObject **result);
/* Send up to n bytes of p on s (kind IO_FD: send() on its fd; IO_TRYFIRST:
 * its send(), given a copy of at most 64 KiB, and the count it returns
 * checked: OSError if not in 0..what it was given) without blocking: the
 * count taken; 0 if it would block, *want then the direction to wait for;
 * -1 with an exception. */
Py_ssize_t ua_sock_send(PyObject *s, int kind, const char *p, size_t n, int *want);
/* Hold buf[off:off+sz] (bytes-like, or str as UTF-8; sz -1: to the end) in
 * *view, *sz made the slice's length; -1 with TypeError/ValueError naming
 * what (the method). */
int ua_get_data(PyObject *buf, Py_buffer *view, Py_ssize_t *off, Py_ssize_t *sz, const char *what);
/* Tell the running loop the object is closing (its waiters are woken, its fd
 * forgotten), and any other loop with a task waiting on it (ua_io_closing():
 * RuntimeError if that loop runs in another thread), then close it. */
int ua_sock_close(PyObject *obj);
/* A read method's n: an int >= min; -1 with TypeError/ValueError naming what. */
static inline int ua_count_arg(PyObject *arg, Py_ssize_t min, const char *what, Py_ssize_t *out)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s(): n must be an int, not %.100s", what, Py_TYPE(arg)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n < min) {
        PyErr_Format(PyExc_ValueError, "%s(): n must be >= %zd", what, min);
        return -1;
    }
    *out = n;
    return 0;
}

/* ---- StreamOp: what every stream method returns (StreamReader, StreamWriter, v3's Stream) ----
 * A C awaitable: each time it is resumed it runs its step, which does the
 * work or gives the IORead/IOWrite to yield while the socket would block.
 * Thrown into or closed (its task cancelled), it is abandoned, having
 * consumed nothing. */
typedef struct ua_streamop ua_streamop;
/* PYGEN_RETURN with *result, PYGEN_NEXT with what to yield, PYGEN_ERROR. */
typedef PySendResult (*ua_op_step)(ua_streamop *op, PyObject **result);
struct ua_streamop {
    PyObject_HEAD
    PyObject *stream;       /* what the method was called on */
    PyObject *acc;          /* awriteiter: the iterator */
    ua_op_step step;
    const char *name;       /* "Type.method", for repr */
    ua_read rq;             /* a read: what it asks */
    Py_buffer view;         /* a write: the data; readinto: the target (held while has_view) */
    Py_ssize_t off, sz;     /* a write: the part of view left to write */
    uint8_t waited, wrote;  /* a write on IO_PY: the wait before the call is done; a call made */
    uint8_t yielded;        /* v3 drain: it has yielded once */
    uint8_t has_view;
    uint8_t done;
};
/* A new op on stream (NULL with an exception); a read's with what it asks. */
ua_streamop *ua_op_new(PyObject *stream, ua_op_step step, const char *name);
ua_streamop *ua_read_op_new(PyObject *stream, ua_op_step step, const char *name, ua_read rq);
/* An awrite(buf, off=0, sz=-1) op on stream (arguments as METH_FASTCALL |
 * METH_KEYWORDS gives them), holding buf[off:off+sz] in its view, off, sz. */
PyObject *ua_awrite_op_new(PyObject *stream, ua_op_step step, const char *name, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames);

/* ---- server.c: the accept loop both start_server()s share ---------------------- */

/* Serve one accepted connection (sock, its peer's address): 0, or -1 with
 * an exception (the connection is then closed and reported). */
typedef int (*ua_serve_fn)(PyObject *owner, PyObject *sock, const struct sockaddr_storage *peer);
/* A socket address as the tuple (or str) CPython's accept() gives. */
PyObject *ua_sockaddr_to_py(const struct sockaddr_storage *ss);
/* Accept what is pending on lsock (a burst, then yield to other tasks),
 * handing each connection to serve; report(owner) hears, with the error
 * set, of one that could not be served, and the loop goes on. Ends
 * (PYGEN_RETURN) once *closed; PYGEN_ERROR if lsock cannot accept; else
 * PYGEN_NEXT with what to yield (IORead, a pause when out of fds, None). */
PySendResult ua_accept_step(PyObject *owner, PyObject *lsock, const int *closed, ua_serve_fn serve,
                            void (*report)(PyObject *owner), PyObject **result);
/* Close a listening socket, waking its task if parked on it, leaving any
 * exception being raised as it is. loop may be NULL. */
void ua_listener_close(LoopObject *loop, PyObject *lsock);

/* ---- the buffer and limit machinery, for every stream kind -------------------- */

/* A linebuf whose storage is a bytes object, so ua_pybuf_take can hand a
 * long result over without copying it. */
void ua_pybuf_init(ua_linebuf *b);
/* The first n buffered bytes as a new bytes object, consumed (large ones by
 * handing the storage over: no second copy). NULL with an exception set. */
PyObject *ua_pybuf_take(ua_linebuf *b, size_t n);
PyObject *ua_reader_take(ReaderObject *r, size_t n);
/* The first buffered line's length with its '\n'; -1 if there is none yet;
 * -2 if it is (or, with no '\n' yet, the buffer already is) longer than
 * r->limit: those bytes were dropped and LimitOverrunError is set. */
ssize_t ua_reader_find_line(ReaderObject *r);
/* limit as given by a user (None or an int > 0) into *out (UA_NO_LIMIT for
 * None); -1 with TypeError/ValueError. */
int ua_limit_arg(PyObject *limit, size_t *out);
int ua_reader_set_limit(ReaderObject *r, PyObject *limit);
int ua_ws_ready(PyObject *module);
int ua_server_ready(PyObject *module);
int ua_udp_ready(PyObject *module);
void ua_set_nodelay(int fd);

#endif
