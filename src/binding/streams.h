/* StreamReader, StreamWriter and the awaitables their methods return. */
#ifndef UA_STREAMS_H
#define UA_STREAMS_H

#include "ua.h"
#include "linebuf.h"

#include <sys/socket.h>

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
} ReaderObject;

typedef struct {
    PyObject_HEAD
    PyObject *s;
    PyObject *extra;      /* dict for get_extra_info() */
    uint8_t kind;
} WriterObject;

#define UA_NO_LIMIT ((size_t)-1)

extern PyTypeObject Reader_Type, Writer_Type, StreamOp_Type;
extern PyObject *ua_LimitOverrunError;   /* a ValueError subclass */

/* New stream objects over a socket (the fast path when it is a plain one). */
PyObject *ua_reader_new(PyObject *polls, PyObject *ios);
PyObject *ua_writer_new(PyObject *s, PyObject *extra);
int ua_streams_ready(PyObject *module);
/* Read more into r->buf (a socket or TLS reader): 1 data or EOF (r->eof),
 * 0 would block (*wait: the syscall to yield), -1 error. */
int ua_reader_fill(ReaderObject *r, PyObject **wait);
/* With an exception set: 1 if it is SSLWantReadError, 2 if SSLWantWriteError
 * (then it is cleared), else 0 (left as it is). */
int ua_ssl_want(void);
/* server.c: an accepted fd as a socket.socket, and a peer address as accept() gives it. */
PyObject *ua_accepted_socket(int family, int fd);
PyObject *ua_sockaddr_to_py(const struct sockaddr_storage *ss);

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
int ua_v3_stream_ready(PyObject *module);   /* v3_stream.c: uasyncio.v3's Stream and accept loop */
int ua_server_ready(PyObject *module);
void ua_set_nodelay(int fd);

#endif
