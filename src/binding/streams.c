/* StreamReader and StreamWriter.
 *
 * Every method returns a StreamOp: a small C awaitable that does the work
 * when awaited and, when the socket would block, yields IORead/IOWrite of
 * the fd to the loop and tries again once resumed. Over a plain socket the
 * data path is recv()/send() on the fd straight from C; reads go first and
 * the poller is asked only when the kernel has nothing (so a busy connection
 * costs no epoll_ctl at all). */
#include "streams.h"
#include "awaitable.h"

#include <errno.h>
#include <sys/socket.h>

#define CHUNK 65536
#define READ_BUDGET 16   /* reads in a row before yielding to other tasks */

static PyObject *socket_type;       /* socket.socket */
static PyObject *str_ssl, *str_readline, *str_send, *str_write, *str_close;
static char scratch[CHUNK];         /* recv() target; used with the GIL held */

/* ---- helpers ---------------------------------------------------------------- */

/* CPython's socket object keeps its fd right after the object header; that
 * layout has not changed in 3.x, and ua_streams_ready() checks it on a real
 * socket before trusting it (else fileno() is called each time). Reading it
 * saves a Python method call per read and per write. */
typedef struct {
    PyObject_HEAD
    int fd;
} sock_head;
static int sock_layout_ok;

/* The fd of a socket (read in place) or of anything with fileno(). */

int ua_fd_of(PyObject *obj)
{
    if (sock_layout_ok && PyObject_TypeCheck(obj, (PyTypeObject *)socket_type)) {
        int fd = ((sock_head *)obj)->fd;
        if (fd >= 0)
            return fd;
        /* as fileno() -1 would give through PyObject_AsFileDescriptor() */
        PyErr_SetString(PyExc_ValueError, "file descriptor cannot be a negative integer (-1)");
        return -1;
    }
    return PyObject_AsFileDescriptor(obj);
}

/* A yielded IORead/IOWrite of an int fd (the loop's cheapest form). */


/* The ssl module if it is imported (no SSL object can exist otherwise). */
static PyObject *ssl_module(void)
{
    PyObject *m = PyImport_GetModule(str_ssl);
    if (!m)
        PyErr_Clear();
    return m;
}

/* With an exception set: 1 if it is SSLWantReadError, 2 if
 * SSLWantWriteError (then it is cleared), else 0 (left as it is). */
static int ssl_want(void)
{
    if (!PyErr_Occurred())
        return 0;
    /* Set the error aside first: looking the module up may clear it. */
    PyObject *exc = ua_err_fetch();
    PyObject *ssl = ssl_module();
    int r = 0;
    if (ssl) {
        PyObject *wr = PyObject_GetAttrString(ssl, "SSLWantReadError");
        PyObject *ww = wr ? PyObject_GetAttrString(ssl, "SSLWantWriteError") : NULL;
        PyErr_Clear();
        if (wr && PyErr_GivenExceptionMatches(exc, wr))
            r = 1;
        else if (ww && PyErr_GivenExceptionMatches(exc, ww))
            r = 2;
        Py_XDECREF(wr);
        Py_XDECREF(ww);
        Py_DECREF(ssl);
    }
    if (r)
        Py_XDECREF(exc);
    else
        ua_err_restore(exc);
    return r;
}

int ua_ssl_want(void)
{
    return ssl_want();
}

static int is_ssl_socket(PyObject *obj)
{
    PyObject *ssl = ssl_module();
    if (!ssl)
        return 0;
    PyObject *t = PyObject_GetAttrString(ssl, "SSLSocket");
    Py_DECREF(ssl);
    int r = t ? PyObject_IsInstance(obj, t) : 0;
    Py_XDECREF(t);
    if (r < 0)
        PyErr_Clear();
    return r > 0;
}

static int io_kind(PyObject *polls, PyObject *ios)
{
    /* The common case, decided by the exact type: a plain socket.socket
     * (SSLSocket is a subclass), so accepting a connection costs no ssl
     * look-up. */
    if (polls == ios && Py_IS_TYPE(ios, (PyTypeObject *)socket_type))
        return IO_FD;
    if (is_ssl_socket(ios))
        return IO_TRYFIRST;
    if (polls == ios && PyObject_IsInstance(ios, socket_type) > 0)
        return IO_FD;
    PyErr_Clear();
    return IO_PY;
}

/* ---- StreamOp ----------------------------------------------------------------- */

enum { OP_READ, OP_READLINE, OP_READEXACTLY, OP_WRITE, OP_WRITEITER, OP_CLOSE_READER, OP_CLOSE_WRITER };

typedef struct {
    PyObject_HEAD
    PyObject *stream;       /* the ReaderObject or WriterObject */
    PyObject *acc;          /* writeiter: the iterator */
    Py_buffer view;         /* write: the caller's buffer, held while writing */
    Py_ssize_t n;           /* read: size asked */
    Py_ssize_t off, sz;     /* write: what is left to write; readexactly: sz, the size asked */
    uint8_t kind;
    uint8_t waited;         /* IO_PY: the wait before the call is done */
    uint8_t has_view;
    uint8_t done;
    uint8_t ended;          /* IO_PY: the object's read gave b"" */
    uint8_t said_done;      /* IOReadDone yielded at the end of the stream */
} OpObject;

static PyObject *op_new(PyObject *stream, int kind)
{
    OpObject *op = PyObject_GC_New(OpObject, &StreamOp_Type);
    if (!op)
        return NULL;
    op->stream = Py_NewRef(stream);
    op->acc = NULL;
    op->n = op->off = op->sz = 0;
    op->kind = (uint8_t)kind;
    op->waited = op->has_view = op->done = op->ended = op->said_done = 0;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

static void op_release_view(OpObject *op)
{
    if (op->has_view) {
        op->has_view = 0;
        PyBuffer_Release(&op->view);
    }
}

static int op_traverse(OpObject *op, visitproc visit, void *arg)
{
    Py_VISIT(op->stream);
    Py_VISIT(op->acc);
    if (op->has_view)
        Py_VISIT(op->view.obj);
    return 0;
}

static int op_clear(OpObject *op)
{
    op_release_view(op);
    Py_CLEAR(op->stream);
    Py_CLEAR(op->acc);
    return 0;
}

static void op_dealloc(OpObject *op)
{
    PyObject_GC_UnTrack(op);
    op_clear(op);
    PyObject_GC_Del(op);
}

/* ---- reading -------------------------------------------------------------------- */

PyObject *ua_LimitOverrunError;

/* Reader buffers live inside bytes objects (ua_linebuf_mem's contract, on
 * PyObject_Realloc: large blocks grow by remapping, not copying), so a long
 * line or a large readexactly() is returned by handing its object over. On
 * failure the old block is gone too (as _PyBytes_Resize does): the read
 * then fails with MemoryError and what was buffered is lost. */
static PyObject *block_owner(void *p)
{
    return (PyObject *)((char *)p - offsetof(PyBytesObject, ob_sval));
}

static void *bytes_resize(void *p, size_t n)
{
    PyObject *obj = p ? block_owner(p) : NULL;
    if (!n || n > (size_t)PY_SSIZE_T_MAX - sizeof(PyBytesObject)) {
        Py_XDECREF(obj);
        return NULL;
    }
    if (!obj)
        obj = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    else if (_PyBytes_Resize(&obj, (Py_ssize_t)n) < 0)
        obj = NULL;
    if (!obj) {
        PyErr_Clear();
        return NULL;
    }
    return PyBytes_AS_STRING(obj);
}

void ua_pybuf_init(ua_linebuf *b)
{
    ua_linebuf_init(b);
    b->mem = bytes_resize;
}

static int append(ReaderObject *r, const void *p, size_t n)
{
    if (ua_linebuf_append(&r->buf, p, n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Results at least this long, that are most of what is buffered, are the
 * buffer's own bytes object handed over (the rest copied out of it); a
 * copy would make a moment with both in memory. Shorter ones are copied. */
#define HANDOVER_MIN (256 * 1024)

PyObject *ua_pybuf_take(ua_linebuf *b, size_t n)
{
    size_t len = ua_linebuf_len(b);
    if (!n)
        return PyBytes_FromStringAndSize(NULL, 0);
    if (n >= HANDOVER_MIN && len - n <= n / 4 && b->mem == bytes_resize) {
        size_t cap;
        char *block = ua_linebuf_detach(b, n, &cap);
        if (!block)
            return PyErr_NoMemory();
        PyObject *obj = block_owner(block);
        if (cap != n && _PyBytes_Resize(&obj, (Py_ssize_t)n) < 0)
            return NULL;
        return obj;
    }
    PyObject *obj = PyBytes_FromStringAndSize(ua_linebuf_peek(b), (Py_ssize_t)n);
    if (obj)
        ua_linebuf_consume(b, n);
    return obj;
}

PyObject *ua_reader_take(ReaderObject *r, size_t n)
{
    return ua_pybuf_take(&r->buf, n);
}

/* Drop the first n buffered bytes (an over-long line) and raise
 * LimitOverrunError, with the limit as its .limit. */
static void overrun(ReaderObject *r, size_t drop)
{
    ua_linebuf_consume(&r->buf, drop);
    PyObject *exc = PyObject_CallFunction(ua_LimitOverrunError, "N",
                                          PyUnicode_FromFormat("readline(): line longer than the stream's limit "
                                                               "of %zu bytes (%zu bytes of it dropped)",
                                                               r->limit, drop));
    PyObject *lim = exc ? PyLong_FromSize_t(r->limit) : NULL;
    if (lim && PyObject_SetAttrString(exc, "limit", lim) == 0)
        PyErr_SetObject(ua_LimitOverrunError, exc);
    Py_XDECREF(lim);
    Py_XDECREF(exc);
}

ssize_t ua_reader_find_line(ReaderObject *r)
{
    ssize_t line = ua_linebuf_find_line(&r->buf);
    if (line >= 0 ? (size_t)line > r->limit : ua_linebuf_len(&r->buf) > r->limit) {
        overrun(r, line >= 0 ? (size_t)line : ua_linebuf_len(&r->buf));
        return -2;
    }
    return line;
}

/* With nothing buffered, a read, a readline or a readexactly is often
 * answered by one recv() alone: build the result from the scratch buffer,
 * and keep only the rest. Returns 1 with *result set, 0 if it is not
 * answered yet. */
static int answer_from_scratch(OpObject *op, ReaderObject *r, size_t k, PyObject **result)
{
    size_t n;
    if (op->kind == OP_READ) {
        n = op->n < 0 || (size_t)op->n > k ? k : (size_t)op->n;
    } else if (op->kind == OP_READLINE) {
        const char *nl = memchr(scratch, '\n', k);
        if (!nl)
            return 0;
        n = (size_t)(nl - scratch) + 1;
        if (n > r->limit)
            return 0;   /* the buffered path raises */
    } else if (op->kind == OP_READEXACTLY && (size_t)op->sz <= k) {
        n = (size_t)op->sz;
    } else {
        return 0;
    }
    *result = PyBytes_FromStringAndSize(scratch, (Py_ssize_t)n);
    if (!*result || append(r, scratch + n, k - n) < 0) {
        Py_CLEAR(*result);
        return -1;
    }
    return 1;
}

/* Read more into r->buf. 1: got data or EOF; 2: answered op at once
 * (*result set); 0: would block (*wait set to the syscall to yield); -1: error. */
static int fill(ReaderObject *r, PyObject **wait, OpObject *op, PyObject **result)
{
    if (r->kind == IO_FD) {
        int fd = ua_fd_of(r->ios);
        if (fd < 0)
            return -1;
        for (;;) {
            ssize_t k = recv(fd, scratch, CHUNK, MSG_DONTWAIT);
            if (k > 0) {
                if (op && !ua_linebuf_len(&r->buf)) {
                    int rc = answer_from_scratch(op, r, (size_t)k, result);
                    if (rc)
                        return rc < 0 ? -1 : 2;
                }
                return append(r, scratch, (size_t)k) < 0 ? -1 : 1;
            }
            if (k == 0) {
                r->eof = 1;
                return 1;
            }
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                *wait = ua_syscall_new(&IORead_Type, r->ios);
                return *wait ? 0 : -1;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    if (r->kind == IO_WS) {
        PyErr_SetString(PyExc_TypeError, "a WebSocket's payloads are read by its own methods");
        return -1;
    }
/* IO_TRYFIRST: a non-blocking object that raises SSLWant*Error. */
    PyObject *data = PyObject_CallMethod(r->ios, "recv", "i", CHUNK);
    if (!data) {
        int want = ssl_want();
        if (!want)
            return -1;
        *wait = ua_syscall_new(want == 1 ? &IORead_Type : &IOWrite_Type, r->polls);
        return *wait ? 0 : -1;
    }
    Py_buffer v;
    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0) {
        Py_DECREF(data);
        return -1;
    }
    int rc = 1;
    if (v.len == 0)
        r->eof = 1;
    else if (append(r, v.buf, (size_t)v.len) < 0)
        rc = -1;
    PyBuffer_Release(&v);
    Py_DECREF(data);
    return rc;
}

int ua_reader_fill(ReaderObject *r, PyObject **wait)
{
    if (r->kind == IO_PY) {
        PyErr_SetString(PyExc_TypeError, "this stream reads through its object's read(): it has no buffer");
        return -1;
    }
    return fill(r, wait, NULL, NULL);
}

/* Has the buffer what op asks for? 1 with *result set (or -1 on error,
 * e.g. a line over the limit), 0 if not yet. Every byte a read takes stays
 * in r->buf until the read returns, so a read timed out or cancelled part
 * way leaves them all for the next one. */
static int answer_from_buffer(OpObject *op, ReaderObject *r, PyObject **result)
{
    size_t have = ua_linebuf_len(&r->buf), n;
    if (op->kind == OP_READ) {
        if (!have && (op->n != 0 || r->kind == IO_PY))   /* IO_PY: read(0) asks the object */
            return 0;
        n = op->n < 0 || (size_t)op->n > have ? have : (size_t)op->n;
    } else if (op->kind == OP_READLINE) {
        ssize_t line = ua_reader_find_line(r);
        if (line == -2)
            return -1;
        if (line < 0)
            return 0;
        n = (size_t)line;
    } else {
        if (have < (size_t)op->sz)
            return 0;
        n = (size_t)op->sz;
    }
    *result = ua_reader_take(r, n);
    return *result ? 1 : -1;
}

/* The stream has ended: as uasyncio 2.0, yield IOReadDone(polls) (the loop
 * forgets the object), then return what is left: b"", or the partial line
 * or bytes. */
static PySendResult at_end(OpObject *op, ReaderObject *r, PyObject **result)
{
    if (!op->said_done) {
        op->said_done = 1;
        *result = ua_syscall_new(&IOReadDone_Type, r->polls);
        return *result ? PYGEN_NEXT : PYGEN_ERROR;
    }
    *result = ua_reader_take(r, ua_linebuf_len(&r->buf));
    return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

/* One step of a read on the buffered kinds (IO_FD, IO_TRYFIRST). */
static PySendResult read_buffered(OpObject *op, ReaderObject *r, PyObject **result)
{
    for (;;) {
        int rc = answer_from_buffer(op, r, result);
        if (rc)
            return rc < 0 ? PYGEN_ERROR : PYGEN_RETURN;
        if (r->eof)
            return at_end(op, r, result);
        if (!r->budget) {
            /* A connection that always has data must not starve the others. */
            r->budget = READ_BUDGET;
            *result = Py_NewRef(Py_None);
            return PYGEN_NEXT;
        }
        PyObject *wait = NULL;
        rc = fill(r, &wait, op, result);
        if (rc < 0)
            return PYGEN_ERROR;
        if (rc == 2) {
            r->budget--;
            return PYGEN_RETURN;
        }
        if (rc == 0) {
            r->budget = READ_BUDGET;
            *result = wait;
            return PYGEN_NEXT;
        }
        r->budget--;
    }
}

/* One step of a read on IO_PY: as uasyncio 2.0, wait for readability, then
 * call ios.read(n) / ios.readline(); what an interrupted read left in the
 * buffer comes first. */
static PySendResult read_generic(OpObject *op, ReaderObject *r, PyObject **result)
{
    for (;;) {
        int rc = answer_from_buffer(op, r, result);
        if (rc)
            return rc < 0 ? PYGEN_ERROR : PYGEN_RETURN;
        if (op->ended)
            return at_end(op, r, result);
        if (!op->waited) {
            op->waited = 1;
            *result = ua_syscall_new(&IORead_Type, r->polls);
            return *result ? PYGEN_NEXT : PYGEN_ERROR;
        }
        op->waited = 0;
        PyObject *res;
        if (op->kind == OP_READLINE)
            res = PyObject_CallMethodNoArgs(r->ios, str_readline);
        else
            res = PyObject_CallMethod(r->ios, "read", "n",
                                      op->kind == OP_READ ? op->n : op->sz - (Py_ssize_t)ua_linebuf_len(&r->buf));
        if (!res)
            return PYGEN_ERROR;
        if (res == Py_None) {   /* nothing yet (a wrapper stream): wait again */
            Py_DECREF(res);
            continue;
        }
        Py_buffer v;
        if (PyObject_GetBuffer(res, &v, PyBUF_SIMPLE) < 0) {
            Py_DECREF(res);
            return PYGEN_ERROR;
        }
        if (op->kind == OP_READ && v.len) {   /* as it came, no copy */
            PyBuffer_Release(&v);
            *result = res;
            return PYGEN_RETURN;
        }
        op->ended = v.len == 0;
        rc = append(r, v.buf, (size_t)v.len);
        PyBuffer_Release(&v);
        Py_DECREF(res);
        if (rc < 0)
            return PYGEN_ERROR;
    }
}

/* ---- writing ---------------------------------------------------------------------- */

static PySendResult write_step(OpObject *op, WriterObject *w, PyObject **result)
{
    while (op->sz > 0) {
        const char *p = (const char *)op->view.buf + op->off;
        Py_ssize_t k;
        if (w->kind == IO_FD) {
            int fd = ua_fd_of(w->s);
            if (fd < 0)
                return PYGEN_ERROR;
            k = send(fd, p, (size_t)op->sz, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    PyErr_SetFromErrno(PyExc_OSError);
                    return PYGEN_ERROR;
                }
                *result = ua_syscall_new(&IOWrite_Type, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
        } else {
            if (w->kind == IO_PY && !op->waited && op->n) {
                /* 2.0 order after a partial write: wait, then write again. */
                op->waited = 1;
                *result = ua_syscall_new(&IOWrite_Type, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
            op->waited = 0;
            PyObject *mv = PyMemoryView_FromMemory((char *)p, op->sz, PyBUF_READ);
            PyObject *res = mv ? PyObject_CallMethodOneArg(w->s, w->kind == IO_PY ? str_write : str_send, mv)
                               : NULL;
            Py_XDECREF(mv);
            if (!res) {
                int want = w->kind == IO_TRYFIRST ? ssl_want() : 0;
                if (!want)
                    return PYGEN_ERROR;
                *result = ua_syscall_new(want == 1 ? &IORead_Type : &IOWrite_Type, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
            k = res == Py_None ? 0 : PyLong_AsSsize_t(res);
            Py_DECREF(res);
            if (k < 0 && PyErr_Occurred())
                return PYGEN_ERROR;
            op->n = 1;   /* at least one write call made */
            if (k == 0 && w->kind == IO_PY) {
                op->waited = 1;
                *result = ua_syscall_new(&IOWrite_Type, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
        }
        op->off += k;
        op->sz -= k;
    }
    op_release_view(op);
    return PYGEN_RETURN;
}

/* Hold buf[off:off+sz] (bytes-like, or str as UTF-8) in op. */
static int op_set_buffer(OpObject *op, PyObject *buf, Py_ssize_t off, Py_ssize_t sz)
{
    PyObject *owner = buf;
    if (PyUnicode_Check(buf)) {
        owner = PyUnicode_AsUTF8String(buf);
        if (!owner)
            return -1;
    } else if (!PyObject_CheckBuffer(buf)) {
        PyErr_Format(PyExc_TypeError, "awrite() takes bytes-like data or str, not %.100s",
                     Py_TYPE(buf)->tp_name);
        return -1;
    } else {
        Py_INCREF(owner);
    }
    int rc = PyObject_GetBuffer(owner, &op->view, PyBUF_SIMPLE);
    Py_DECREF(owner);
    if (rc < 0)
        return -1;
    op->has_view = 1;
    if (sz == -1)
        sz = op->view.len - off;
    if (off < 0 || sz < 0 || off > op->view.len || sz > op->view.len - off) {
        PyErr_Format(PyExc_ValueError, "awrite(): off=%zd, sz=%zd out of range for %zd bytes", off, sz,
                     op->view.len);
        op_release_view(op);
        return -1;
    }
    op->off = off;
    op->sz = sz;
    op->n = 0;
    op->waited = 0;
    return 0;
}

static PySendResult writeiter_step(OpObject *op, WriterObject *w, PyObject **result)
{
    for (;;) {
        if (op->has_view) {
            PySendResult sr = write_step(op, w, result);   /* sets *result only to yield */
            if (sr != PYGEN_RETURN)
                return sr;
        }
        PyObject *item = PyIter_Next(op->acc);
        if (!item) {
            if (PyErr_Occurred())
                return PYGEN_ERROR;
            *result = Py_NewRef(Py_None);
            return PYGEN_RETURN;
        }
        int rc = op_set_buffer(op, item, 0, -1);
        Py_DECREF(item);
        if (rc < 0)
            return PYGEN_ERROR;
    }
}

/* ---- closing ----------------------------------------------------------------------- */

static PyObject *sock_close_c;   /* _socket.socket.close */

/* No file object made by makefile() still uses it (socket.py counts them). */
static int plain_socket_unshared(PyObject *obj)
{
    PyObject *refs = PyObject_GetAttrString(obj, "_io_refs");
    if (!refs) {
        PyErr_Clear();
        return 0;
    }
    int unshared = PyLong_Check(refs) && PyLong_AsLong(refs) <= 0;
    Py_DECREF(refs);
    return unshared;
}

static int unregister_and_close(PyObject *obj)
{
    LoopObject *loop = ua_running_loop_get();
    if (loop && ua_loop_io_closing(loop, obj) < 0)
        return -1;
    /* A plain socket.socket with no makefile() is closed by the C method
     * directly, without socket.py's two Python-level calls. */
    PyObject *r;
    if (Py_IS_TYPE(obj, (PyTypeObject *)socket_type) && sock_close_c && plain_socket_unshared(obj))
        r = PyObject_CallOneArg(sock_close_c, obj);
    else
        r = PyObject_CallMethodNoArgs(obj, str_close);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* ---- the op's protocol -------------------------------------------------------------- */

static PySendResult op_send(OpObject *op, PyObject *value, PyObject **result)
{
    *result = NULL;
    if (op->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited stream operation");
        return PYGEN_ERROR;
    }
    PySendResult sr;
    switch (op->kind) {
    case OP_READ:
    case OP_READLINE:
    case OP_READEXACTLY: {
        ReaderObject *r = (ReaderObject *)op->stream;
        sr = r->kind == IO_PY ? read_generic(op, r, result) : read_buffered(op, r, result);
        break;
    }
    case OP_WRITE:
        sr = write_step(op, (WriterObject *)op->stream, result);
        if (sr == PYGEN_RETURN)
            *result = Py_NewRef(Py_None);
        break;
    case OP_WRITEITER:
        sr = writeiter_step(op, (WriterObject *)op->stream, result);
        break;
    case OP_CLOSE_READER:
        sr = unregister_and_close(((ReaderObject *)op->stream)->polls) < 0 ? PYGEN_ERROR
                                                                                        : PYGEN_RETURN;
        if (sr == PYGEN_RETURN)
            *result = Py_NewRef(Py_None);
        break;
    default:
        sr = unregister_and_close(((WriterObject *)op->stream)->s) < 0 ? PYGEN_ERROR
                                                                                    : PYGEN_RETURN;
        if (sr == PYGEN_RETURN)
            *result = Py_NewRef(Py_None);
        break;
    }
    if (sr != PYGEN_NEXT) {
        op->done = 1;
        op_release_view(op);
    }
    return sr;
}

static PyObject *op_iternext(OpObject *op)
{
    PyObject *result;
    PySendResult sr = op_send(op, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *op_send_method(OpObject *op, PyObject *value)
{
    return ua_send_result(op_iternext(op));
}


static PyObject *op_repr(OpObject *op)
{
    static const char *const names[] = {"read", "readline", "readexactly", "awrite", "awriteiter", "aclose",
                                        "aclose"};
    return PyUnicode_FromFormat("<stream %s %R>", names[op->kind], op->stream);
}

static PyMethodDef op_methods[] = {
    {"send", (PyCFunction)op_send_method, METH_O, NULL},
    {NULL},
};

static PyAsyncMethods op_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)op_send,
};

PyTypeObject StreamOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.StreamOp",
    .tp_basicsize = sizeof(OpObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable stream operation (what StreamReader/StreamWriter methods return).",
    .tp_dealloc = (destructor)op_dealloc,
    .tp_traverse = (traverseproc)op_traverse,
    .tp_clear = (inquiry)op_clear,
    .tp_repr = (reprfunc)op_repr,
    .tp_as_async = &op_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)op_iternext,
    .tp_methods = op_methods,
};

/* ---- StreamReader -------------------------------------------------------------------- */

static void reader_init(ReaderObject *r, PyObject *polls, PyObject *ios)
{
    r->polls = Py_NewRef(polls);
    r->ios = Py_NewRef(ios ? ios : polls);
    ua_pybuf_init(&r->buf);
    r->kind = (uint8_t)io_kind(r->polls, r->ios);
    r->eof = 0;
    r->budget = READ_BUDGET;
    r->limit = UA_NO_LIMIT;
}

PyObject *ua_reader_new(PyObject *polls, PyObject *ios)
{
    ReaderObject *r = PyObject_GC_New(ReaderObject, &Reader_Type);
    if (!r)
        return NULL;
    reader_init(r, polls, ios);
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

int ua_limit_arg(PyObject *limit, size_t *out)
{
    if (limit == Py_None) {
        *out = UA_NO_LIMIT;
        return 0;
    }
    if (!PyLong_Check(limit)) {
        PyErr_Format(PyExc_TypeError, "limit must be None or an int, not %.100s", Py_TYPE(limit)->tp_name);
        return -1;
    }
    Py_ssize_t n = PyLong_AsSsize_t(limit);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n <= 0) {
        PyErr_Format(PyExc_ValueError, "limit must be None or > 0, not %zd", n);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

int ua_reader_set_limit(ReaderObject *r, PyObject *limit)
{
    return ua_limit_arg(limit, &r->limit);
}

static PyObject *reader_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"polls", "ios", "limit", NULL};
    PyObject *polls, *ios = Py_None, *limit = Py_None;
    size_t lim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:StreamReader", kwlist, &polls, &ios, &limit) ||
        ua_limit_arg(limit, &lim) < 0)
        return NULL;
    ReaderObject *r = (ReaderObject *)type->tp_alloc(type, 0);
    if (!r)
        return NULL;
    reader_init(r, polls, ios == Py_None ? NULL : ios);
    r->limit = lim;
    return (PyObject *)r;
}

static PyObject *reader_get_limit(ReaderObject *r, void *unused)
{
    return r->limit == UA_NO_LIMIT ? Py_NewRef(Py_None) : PyLong_FromSize_t(r->limit);
}

static int reader_set_limit_attr(ReaderObject *r, PyObject *v, void *unused)
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete limit");
        return -1;
    }
    return ua_reader_set_limit(r, v);
}

static PyGetSetDef reader_getset[] = {
    {"limit", (getter)reader_get_limit, (setter)reader_set_limit_attr,
     "the longest line readline() returns (None: no limit); longer raises LimitOverrunError", NULL},
    {NULL},
};

static PyObject *reader_read(ReaderObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "read() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1) {
        if (!PyLong_Check(args[0])) {
            PyErr_Format(PyExc_TypeError, "read(): n must be an int, not %.100s", Py_TYPE(args[0])->tp_name);
            return NULL;
        }
        n = PyLong_AsSsize_t(args[0]);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (n < -1) {
            PyErr_SetString(PyExc_ValueError, "read(): n must be >= -1");
            return NULL;
        }
    }
    OpObject *op = (OpObject *)op_new((PyObject *)r, OP_READ);
    if (op)
        op->n = n;
    return (PyObject *)op;
}

static PyObject *reader_readline(ReaderObject *r, PyObject *unused)
{
    return op_new((PyObject *)r, OP_READLINE);
}

static PyObject *reader_readexactly(ReaderObject *r, PyObject *arg)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "readexactly(): n must be an int, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "readexactly(): n must be >= 0");
        return NULL;
    }
    OpObject *op = (OpObject *)op_new((PyObject *)r, OP_READEXACTLY);
    if (!op)
        return NULL;
    op->sz = n;   /* nothing reserved: the bytes gather in the buffer as they come */
    return (PyObject *)op;
}

static PyObject *reader_aclose(ReaderObject *r, PyObject *unused)
{
    return op_new((PyObject *)r, OP_CLOSE_READER);
}

static PyObject *reader_repr(ReaderObject *r)
{
    return PyUnicode_FromFormat("<StreamReader %R %R>", r->polls, r->ios);
}

static int reader_traverse(ReaderObject *r, visitproc visit, void *arg)
{
    Py_VISIT(r->polls);
    Py_VISIT(r->ios);
    return 0;
}

static int reader_clear(ReaderObject *r)
{
    Py_CLEAR(r->polls);
    Py_CLEAR(r->ios);
    return 0;
}

static void reader_dealloc(ReaderObject *r)
{
    PyObject_GC_UnTrack(r);
    reader_clear(r);
    ua_linebuf_free(&r->buf);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef reader_methods[] = {
    {"read", (PyCFunction)(void (*)(void))reader_read, METH_FASTCALL,
     "read(n=-1): awaitable; one read of up to n bytes (-1: what is available), b'' at EOF."},
    {"readline", (PyCFunction)reader_readline, METH_NOARGS,
     "readline(): awaitable; a line with its b'\\n'; at EOF the partial line, then b''.\n"
     "A line longer than the reader's limit raises LimitOverrunError (a ValueError) and is dropped."},
    {"readexactly", (PyCFunction)reader_readexactly, METH_O,
     "readexactly(n): awaitable; n bytes, or fewer if the stream ends first. Nothing is reserved\n"
     "up front: memory is taken as the bytes arrive."},
    {"aclose", (PyCFunction)reader_aclose, METH_NOARGS, "aclose(): awaitable; unregister and close."},
    {NULL},
};

static PyMemberDef reader_members[] = {
    {"polls", T_OBJECT, offsetof(ReaderObject, polls), READONLY, "what is polled"},
    {"ios", T_OBJECT, offsetof(ReaderObject, ios), READONLY, "what is read"},
    {NULL},
};

PyTypeObject Reader_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.StreamReader",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "StreamReader(polls, ios=None, limit=None): reads a socket (in C) or any object with\n"
              "read/readline. limit: the longest line readline() returns (None: no limit).",
    .tp_new = reader_tp_new,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_traverse = (traverseproc)reader_traverse,
    .tp_clear = (inquiry)reader_clear,
    .tp_repr = (reprfunc)reader_repr,
    .tp_methods = reader_methods,
    .tp_members = reader_members,
    .tp_getset = reader_getset,
};

/* ---- StreamWriter ----------------------------------------------------------------------- */

PyObject *ua_writer_new(PyObject *s, PyObject *extra)
{
    WriterObject *w = PyObject_GC_New(WriterObject, &Writer_Type);
    if (!w)
        return NULL;
    w->s = Py_NewRef(s);
    w->extra = Py_NewRef(extra);
    w->kind = (uint8_t)io_kind(s, s);
    PyObject_GC_Track(w);
    return (PyObject *)w;
}

static PyObject *writer_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"s", "extra", NULL};
    PyObject *s, *extra = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:StreamWriter", kwlist, &s, &extra))
        return NULL;
    WriterObject *w = (WriterObject *)type->tp_alloc(type, 0);
    if (!w)
        return NULL;
    w->s = Py_NewRef(s);
    w->extra = extra == Py_None ? PyDict_New() : Py_NewRef(extra);
    w->kind = (uint8_t)io_kind(s, s);
    if (!w->extra) {
        Py_DECREF(w);
        return NULL;
    }
    return (PyObject *)w;
}

static PyObject *writer_awrite(WriterObject *w, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buf", "off", "sz", NULL};
    PyObject *buf;
    Py_ssize_t off = 0, sz = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|nn:awrite", kwlist, &buf, &off, &sz))
        return NULL;
    OpObject *op = (OpObject *)op_new((PyObject *)w, OP_WRITE);
    if (op && op_set_buffer(op, buf, off, sz) < 0)
        Py_CLEAR(op);
    return (PyObject *)op;
}

static PyObject *writer_awriteiter(WriterObject *w, PyObject *iterable)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (!it)
        return NULL;
    OpObject *op = (OpObject *)op_new((PyObject *)w, OP_WRITEITER);
    if (!op) {
        Py_DECREF(it);
        return NULL;
    }
    op->acc = it;
    return (PyObject *)op;
}

static PyObject *writer_aclose(WriterObject *w, PyObject *unused)
{
    return op_new((PyObject *)w, OP_CLOSE_WRITER);
}

static PyObject *writer_get_extra_info(WriterObject *w, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:get_extra_info", kwlist, &name, &dflt))
        return NULL;
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "socket") == 0)
        return Py_NewRef(w->s);
    if (!PyDict_Check(w->extra))
        return PyObject_CallMethod(w->extra, "get", "OO", name, dflt);
    PyObject *v = PyDict_GetItemWithError(w->extra, name);
    if (!v && PyErr_Occurred())
        return NULL;
    return Py_NewRef(v ? v : dflt);
}

static PyObject *writer_repr(WriterObject *w)
{
    return PyUnicode_FromFormat("<StreamWriter %R>", w->s);
}

static int writer_traverse(WriterObject *w, visitproc visit, void *arg)
{
    Py_VISIT(w->s);
    Py_VISIT(w->extra);
    return 0;
}

static int writer_clear(WriterObject *w)
{
    Py_CLEAR(w->s);
    Py_CLEAR(w->extra);
    return 0;
}

static void writer_dealloc(WriterObject *w)
{
    PyObject_GC_UnTrack(w);
    writer_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef writer_methods[] = {
    {"awrite", (PyCFunction)(void (*)(void))writer_awrite, METH_VARARGS | METH_KEYWORDS,
     "awrite(buf, off=0, sz=-1): awaitable; writes buf[off:off+sz] completely."},
    {"awriteiter", (PyCFunction)writer_awriteiter, METH_O, "awriteiter(iterable): awaitable; awrite each item."},
    {"aclose", (PyCFunction)writer_aclose, METH_NOARGS, "aclose(): awaitable; unregister and close."},
    {"get_extra_info", (PyCFunction)(void (*)(void))writer_get_extra_info, METH_VARARGS | METH_KEYWORDS,
     "get_extra_info(name, default=None): 'peername', 'socket', ..."},
    {NULL},
};

static PyMemberDef writer_members[] = {
    {"s", T_OBJECT, offsetof(WriterObject, s), READONLY, "the socket (or object) written to"},
    {"extra", T_OBJECT, offsetof(WriterObject, extra), READONLY, "extra information"},
    {NULL},
};

PyTypeObject Writer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.StreamWriter",
    .tp_basicsize = sizeof(WriterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "StreamWriter(s, extra): writes to a socket (in C) or any object with write().",
    .tp_new = writer_tp_new,
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_traverse = (traverseproc)writer_traverse,
    .tp_clear = (inquiry)writer_clear,
    .tp_repr = (reprfunc)writer_repr,
    .tp_methods = writer_methods,
    .tp_members = writer_members,
};

/* Does a real socket keep its fd where sock_head says, open and closed? */
static int check_sock_layout(void)
{
    PyObject *s = PyObject_CallNoArgs(socket_type);
    if (!s)
        return -1;
    int fd = PyObject_AsFileDescriptor(s);
    int ok = fd >= 0 && ((sock_head *)s)->fd == fd;
    PyObject *r = PyObject_CallMethod(s, "close", NULL);
    ok = ok && r && ((sock_head *)s)->fd == -1;
    Py_XDECREF(r);
    Py_DECREF(s);
    if (!r)
        return -1;
    sock_layout_ok = ok;
    return 0;
}

int ua_streams_ready(PyObject *module)
{
    PyObject *socket_mod = PyImport_ImportModule("socket");
    if (!socket_mod)
        return -1;
    socket_type = PyObject_GetAttrString(socket_mod, "socket");
    Py_DECREF(socket_mod);
    if (!socket_type)
        return -1;
    if (!(str_ssl = PyUnicode_InternFromString("ssl")) ||
        !(str_readline = PyUnicode_InternFromString("readline")) ||
        !(str_send = PyUnicode_InternFromString("send")) ||
        !(str_write = PyUnicode_InternFromString("write")) || !(str_close = PyUnicode_InternFromString("close")))
        return -1;
    if (PyType_Ready(&StreamOp_Type) < 0 || PyType_Ready(&Reader_Type) < 0 || PyType_Ready(&Writer_Type) < 0)
        return -1;
    if (check_sock_layout() < 0)
        return -1;
    PyObject *base = PyObject_GetAttrString(socket_type, "__base__");
    sock_close_c = base ? PyObject_GetAttrString(base, "close") : NULL;
    Py_XDECREF(base);
    if (!sock_close_c)
        return -1;
    ua_LimitOverrunError = PyErr_NewExceptionWithDoc(
        "uasyncio.LimitOverrunError",
        "readline() met a line longer than the stream's limit (a ValueError; .limit is the limit).\n"
        "The bytes of that line that were buffered are dropped.",
        PyExc_ValueError, NULL);
    if (!ua_LimitOverrunError || PyModule_AddObjectRef(module, "LimitOverrunError", ua_LimitOverrunError) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "StreamReader", (PyObject *)&Reader_Type) < 0 ||
        PyModule_AddObjectRef(module, "StreamWriter", (PyObject *)&Writer_Type) < 0)
        return -1;
    return 0;
}
