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
    PyObject *acc;          /* readexactly: the bytes being filled; writeiter: the iterator */
    Py_buffer view;         /* write: the caller's buffer, held while writing */
    Py_ssize_t n;           /* read: size asked; readexactly: bytes filled so far */
    Py_ssize_t off, sz;     /* write: what is left to write */
    uint8_t kind;
    uint8_t waited;         /* IO_PY: the wait before the call is done */
    uint8_t has_view;
    uint8_t done;
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
    op->waited = op->has_view = op->done = 0;
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

static int append(ReaderObject *r, const void *p, size_t n)
{
    if (ua_linebuf_append(&r->buf, p, n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* With nothing buffered, a read or a readline is often answered by one
 * recv() alone: build the result from the scratch buffer, and keep only the
 * rest. Returns 1 with *result set, 0 if it is not answered yet. */
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

/* Take n buffered bytes as a bytes object. */
static PyObject *take(ReaderObject *r, size_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(ua_linebuf_peek(&r->buf), (Py_ssize_t)n);
    if (b)
        ua_linebuf_consume(&r->buf, n);
    return b;
}

/* One step of a read on the buffered kinds (IO_FD, IO_TRYFIRST). */
static PySendResult read_buffered(OpObject *op, ReaderObject *r, PyObject **result)
{
    for (;;) {
        size_t have = ua_linebuf_len(&r->buf);
        switch (op->kind) {
        case OP_READ:
            if (have || r->eof || op->n == 0) {
                size_t n = op->n < 0 || (size_t)op->n > have ? have : (size_t)op->n;
                *result = take(r, n);
                return *result ? PYGEN_RETURN : PYGEN_ERROR;
            }
            break;
        case OP_READLINE: {
            ssize_t line = ua_linebuf_find_line(&r->buf);
            if (line >= 0 || r->eof) {
                *result = take(r, line >= 0 ? (size_t)line : have);
                return *result ? PYGEN_RETURN : PYGEN_ERROR;
            }
            break;
        }
        case OP_READEXACTLY: {
            size_t want = (size_t)(op->sz - op->n);
            size_t k = have < want ? have : want;
            if (k) {
                memcpy(PyBytes_AS_STRING(op->acc) + op->n, ua_linebuf_peek(&r->buf), k);
                ua_linebuf_consume(&r->buf, k);
            }
            op->n += (Py_ssize_t)k;
            if (op->n == op->sz || r->eof) {
                if (op->n < op->sz && _PyBytes_Resize(&op->acc, op->n) < 0)
                    return PYGEN_ERROR;
                *result = op->acc;
                op->acc = NULL;
                return PYGEN_RETURN;
            }
            break;
        }
        }
        if (!r->budget) {
            /* A connection that always has data must not starve the others. */
            r->budget = READ_BUDGET;
            *result = Py_NewRef(Py_None);
            return PYGEN_NEXT;
        }
        PyObject *wait = NULL;
        int rc = fill(r, &wait, op, result);
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
 * call ios.read(n) / ios.readline(). */
static PySendResult read_generic(OpObject *op, ReaderObject *r, PyObject **result)
{
    for (;;) {
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
            res = PyObject_CallMethod(r->ios, "read", "n", op->kind == OP_READ ? op->n : op->sz - op->n);
        if (!res)
            return PYGEN_ERROR;
        if (res == Py_None) {   /* nothing yet (a wrapper stream): wait again */
            Py_DECREF(res);
            continue;
        }
        if (op->kind == OP_READ) {
            *result = res;
            return PYGEN_RETURN;
        }
        Py_buffer v;
        if (PyObject_GetBuffer(res, &v, PyBUF_SIMPLE) < 0) {
            Py_DECREF(res);
            return PYGEN_ERROR;
        }
        int end = v.len == 0;
        int rc = append(r, v.buf, (size_t)v.len);
        op->n += v.len;
        PyBuffer_Release(&v);
        Py_DECREF(res);
        if (rc < 0)
            return PYGEN_ERROR;
        size_t have = ua_linebuf_len(&r->buf);
        if (end || (op->kind == OP_READLINE && ua_linebuf_peek(&r->buf)[have - 1] == '\n') ||
            (op->kind == OP_READEXACTLY && op->n >= op->sz)) {
            *result = take(r, have);
            return *result ? PYGEN_RETURN : PYGEN_ERROR;
        }
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

PyObject *ua_reader_new(PyObject *polls, PyObject *ios)
{
    ReaderObject *r = PyObject_GC_New(ReaderObject, &Reader_Type);
    if (!r)
        return NULL;
    r->polls = Py_NewRef(polls);
    r->ios = Py_NewRef(ios ? ios : polls);
    ua_linebuf_init(&r->buf);
    r->kind = (uint8_t)io_kind(r->polls, r->ios);
    r->eof = 0;
    r->budget = READ_BUDGET;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

static PyObject *reader_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"polls", "ios", NULL};
    PyObject *polls, *ios = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:StreamReader", kwlist, &polls, &ios))
        return NULL;
    ReaderObject *r = (ReaderObject *)type->tp_alloc(type, 0);
    if (!r)
        return NULL;
    r->polls = Py_NewRef(polls);
    r->ios = Py_NewRef(ios == Py_None ? polls : ios);
    ua_linebuf_init(&r->buf);
    r->kind = (uint8_t)io_kind(r->polls, r->ios);
    r->budget = READ_BUDGET;
    return (PyObject *)r;
}

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
    op->sz = n;
    if (r->kind != IO_PY && !(op->acc = PyBytes_FromStringAndSize(NULL, n))) {
        Py_DECREF(op);
        return NULL;
    }
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
     "readline(): awaitable; a line with its b'\\n'; at EOF the partial line, then b''."},
    {"readexactly", (PyCFunction)reader_readexactly, METH_O,
     "readexactly(n): awaitable; n bytes, or fewer if the stream ends first."},
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
    .tp_doc = "StreamReader(polls, ios=None): reads a socket (in C) or any object with read/readline.",
    .tp_new = reader_tp_new,
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_traverse = (traverseproc)reader_traverse,
    .tp_clear = (inquiry)reader_clear,
    .tp_repr = (reprfunc)reader_repr,
    .tp_methods = reader_methods,
    .tp_members = reader_members,
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
    if (PyModule_AddObjectRef(module, "StreamReader", (PyObject *)&Reader_Type) < 0 ||
        PyModule_AddObjectRef(module, "StreamWriter", (PyObject *)&Writer_Type) < 0)
        return -1;
    return 0;
}
