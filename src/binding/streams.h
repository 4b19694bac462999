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
};

typedef struct {
    PyObject_HEAD
    PyObject *polls;      /* what is polled */
    PyObject *ios;        /* what is read */
    ua_linebuf buf;       /* read but not yet returned */
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

extern PyTypeObject Reader_Type, Writer_Type, StreamOp_Type;

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
int ua_ws_ready(PyObject *module);
int ua_v3_stream_ready(PyObject *module);   /* v3_stream.c: uasyncio.v3's Stream and accept loop */
int ua_server_ready(PyObject *module);
void ua_set_nodelay(int fd);

#endif
