/* uasyncio.v3's Stream (StreamReader and StreamWriter are the same class)
 * and the accept loop of its start_server().
 *
 * A Stream reads through a v2 StreamReader it owns and the read loop of
 * io/streams.c (ua_read_step: recv() on the fd in C, or the SSL object's
 * recv()), and writes with its ua_sock_send(), so both APIs share one data
 * path; the accept loop is io/server.c's (ua_accept_step). Over any other
 * object (a UART, a driver, a test double: MicroPython's streams) it calls
 * the object's read/readline/readinto/write as MicroPython's Stream does,
 * each after waiting for it (the loop polls it through its fileno(), or
 * else its ioctl()). Each async method
 * returns a StreamOp: a C awaitable
 * that does the work when awaited and, when the socket would block, yields
 * IORead/IOWrite to the loop and tries again once resumed. Nothing is
 * consumed from the buffer before an operation completes, so a read that is
 * cancelled loses no data.
 *
 * write() hands the kernel what it takes at once and keeps the rest in the
 * stream's output buffer; drain() sends that, waiting as needed, and always
 * yields once (as MicroPython: a loop of write + drain cannot starve the
 * others). */
#include "v3.h"
#include "io/io.h"

#include <errno.h>

typedef struct {
    PyObject_HEAD
    ReaderObject *rd;   /* the read side: socket, buffer, fill(); NULL until __init__ */
    ua_extra extra;     /* get_extra_info()'s */
    ua_linebuf out;     /* written, not yet taken by the kernel */
    uint8_t closed;     /* wait_closed()/aclose() closed the socket */
} StreamObject;

static PyTypeObject Stream_Type, Acceptor_Type;
static PyObject *str_write;

#define SOCK(st) ((st)->rd->ios)

/* ---- helpers ------------------------------------------------------------- */

static int closed_error(void)
{
    errno = EBADF;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* A subclass whose __init__ did not call Stream.__init__ has no stream
 * yet: -1 with AttributeError (MicroPython's would miss self.s), else 0. */
static int check_init(StreamObject *st)
{
    if (st->rd)
        return 0;
    PyErr_Format(PyExc_AttributeError, "'%.100s' object has no stream: Stream.__init__(s) was not called",
                 Py_TYPE(st)->tp_name);
    return -1;
}

/* An object's write(data) of n bytes, as MicroPython's Stream calls it:
 * the count taken, None counting as 0. */
static Py_ssize_t py_write_obj(PyObject *s, PyObject *data, size_t n)
{
    Py_INCREF(s);   /* (its write() may re-init the stream, which let go of it) */
    PyObject *res = PyObject_CallMethodOneArg(s, str_write, data);
    Py_ssize_t k = !res ? -1 : res == Py_None ? 0 : PyLong_AsSsize_t(res);
    if (res && !(k == -1 && PyErr_Occurred()) && (k < 0 || (size_t)k > n)) {
        PyErr_Format(PyExc_ValueError, "%R.write() returned %R for %zu bytes", s, res, n);
        k = -1;
    }
    Py_XDECREF(res);
    Py_DECREF(s);
    return k;
}

/* The same for bytes of our own: it gets a bytes copy, which it may keep. */
static Py_ssize_t py_write(PyObject *s, const char *p, size_t n)
{
    PyObject *data = PyBytes_FromStringAndSize(p, (Py_ssize_t)n);
    Py_ssize_t k = data ? py_write_obj(s, data, n) : -1;
    Py_XDECREF(data);
    return k;
}

/* Send up to n bytes without blocking: the count taken (0: would block,
 * *want the direction to wait for), or -1 with an exception. */
static Py_ssize_t send_some(StreamObject *st, const char *p, size_t n, int *want)
{
    if (check_init(st) < 0)
        return -1;
    if (st->closed)
        return closed_error();
    if (st->rd->kind == IO_PY) {
        *want = UA_POLL_WRITE;
        return py_write(SOCK(st), p, n);
    }
    return ua_sock_send(SOCK(st), st->rd->kind, p, n, want);
}

/* Queue n bytes for drain(). */
static int queue_out(StreamObject *st, const char *p, size_t n)
{
    if (n && ua_linebuf_append(&st->out, p, n) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* write()'s work: send at once if nothing is queued, queue the rest. */
static int stream_write_bytes(StreamObject *st, const char *p, size_t n)
{
    if (check_init(st) < 0)
        return -1;
    if (st->closed)
        return closed_error();
    if (!ua_linebuf_len(&st->out) && n) {
        int want;
        Py_ssize_t k = send_some(st, p, n, &want);
        if (k < 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return queue_out(st, p, n);
}

static int close_socket(StreamObject *st)
{
    if (check_init(st) < 0)
        return -1;
    if (st->closed)
        return 0;
    if (ua_io_check_closing(SOCK(st)) < 0)   /* a task of a loop in another thread waits on it */
        return -1;
    st->closed = 1;
    ua_linebuf_free(&st->out);
    /* Tasks still parked on it are woken (their next call raises), and
     * the poller forgets the fd before it can be reused. */
    PyObject *s = Py_NewRef(SOCK(st));   /* its close() may re-init st */
    int rc = ua_sock_close(s);
    Py_DECREF(s);
    return rc;
}

/* ---- the steps of its StreamOps (io/streams.c's awaitable) --------------------------- */

#define OP_STREAM(op) ((StreamObject *)(op)->stream)

static PySendResult read_step(ua_streamop *op, PyObject **result)
{
    StreamObject *st = OP_STREAM(op);
    if (check_init(st) < 0)
        return PYGEN_ERROR;
    if (st->closed) {
        closed_error();
        return PYGEN_ERROR;
    }
    /* An object's read() is Python code, which may re-init st: the reader
     * stays alive until the step ends. */
    ReaderObject *rd = (ReaderObject *)Py_NewRef(st->rd);
    PySendResult sr = ua_read_step(rd, &op->rq, result);
    Py_DECREF(rd);
    return sr;
}

/* Send what write() buffered; always yields once, so that a loop of
 * write + drain cannot starve the others. A socket is written first and
 * waited for when full; any other object, as MicroPython's Stream does,
 * is waited for before each write. */
static PySendResult drain_step(ua_streamop *op, PyObject **result)
{
    StreamObject *st = OP_STREAM(op);
    while (ua_linebuf_len(&st->out)) {
        if (check_init(st) < 0)
            return PYGEN_ERROR;
        int wait_first = st->rd->kind == IO_PY;
        if (wait_first && !op->waited) {
            op->waited = op->yielded = 1;
            *result = ua_syscall_new(&IOWrite_Type, SOCK(st));
            return *result ? PYGEN_NEXT : PYGEN_ERROR;
        }
        op->waited = 0;
        int want;
        Py_ssize_t k = send_some(st, ua_linebuf_peek(&st->out), ua_linebuf_len(&st->out), &want);
        if (k < 0)
            return PYGEN_ERROR;
        if (!k && wait_first)
            continue;
        if (!k) {
            op->yielded = 1;
            *result = ua_syscall_for(want, SOCK(st));
            return *result ? PYGEN_NEXT : PYGEN_ERROR;
        }
        /* an object's write() may have drained or closed st meanwhile */
        size_t have = ua_linebuf_len(&st->out);
        ua_linebuf_consume(&st->out, (size_t)k < have ? (size_t)k : have);
    }
    *result = Py_NewRef(Py_None);
    if (!op->yielded) {
        op->yielded = 1;
        return PYGEN_NEXT;
    }
    return PYGEN_RETURN;
}

/* The write happens when awaited (awrite is a coroutine in MicroPython),
 * then the drain. */
static PySendResult awrite_step(ua_streamop *op, PyObject **result)
{
    if (op->has_view) {
        int rc = stream_write_bytes(OP_STREAM(op), (const char *)op->view.buf + op->off, (size_t)op->sz);
        op->has_view = 0;
        PyBuffer_Release(&op->view);
        if (rc < 0)
            return PYGEN_ERROR;
    }
    return drain_step(op, result);
}

static PySendResult close_step(ua_streamop *op, PyObject **result)
{
    if (close_socket(OP_STREAM(op)) < 0)
        return PYGEN_ERROR;
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

/* ---- Stream ------------------------------------------------------------------ */

/* Read and write s from now on (a socket, plain or SSL, or any object with
 * read/write). */
static int stream_set_sock(StreamObject *st, PyObject *s, size_t limit)
{
    PyObject *rd = ua_reader_new(s, NULL);
    if (!rd)
        return -1;
    ((ReaderObject *)rd)->limit = limit;
    Py_XSETREF(st->rd, (ReaderObject *)rd);
    st->closed = 0;
    return 0;
}

static void stream_set_extra(StreamObject *st, PyObject *extra)
{
    memset(&st->extra.peer, 0, sizeof(st->extra.peer));   /* no raw peer waiting */
    Py_XSETREF(st->extra.dict, Py_XNewRef(extra));
}

/* A new Stream over sock: as Stream(sock, extra), for the accept loop. */
static PyObject *stream_make(PyTypeObject *type, PyObject *sock, PyObject *extra, size_t limit)
{
    StreamObject *st = (StreamObject *)type->tp_alloc(type, 0);
    if (!st)
        return NULL;
    ua_linebuf_init(&st->out);
    if (stream_set_sock(st, sock, limit) < 0) {
        Py_DECREF(st);
        return NULL;
    }
    stream_set_extra(st, extra);
    return (PyObject *)st;
}

/* Stream is a plain class to a subclass, as MicroPython's: __new__ takes
 * any arguments (they are the subclass's __init__'s), __init__(s, e={})
 * sets the stream up and may be called again. */
static PyObject *stream_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    StreamObject *st = (StreamObject *)type->tp_alloc(type, 0);
    if (st)
        ua_linebuf_init(&st->out);
    return (PyObject *)st;
}

static int stream_tp_init(StreamObject *st, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"s", "e", "limit", NULL};
    PyObject *s, *e = NULL, *limit = Py_None;
    size_t lim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO:Stream", kwlist, &s, &e, &limit) ||
        ua_limit_arg(limit, &lim) < 0 || stream_set_sock(st, s, lim) < 0)
        return -1;
    ua_linebuf_free(&st->out);
    stream_set_extra(st, e == Py_None ? NULL : e);
    return 0;
}

static PyObject *stream_read(StreamObject *st, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "read() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && ua_count_arg(args[0], PY_SSIZE_T_MIN, "read", &n) < 0)
        return NULL;
    return (PyObject *)ua_read_op_new((PyObject *)st, read_step, "Stream.read",
                                      (ua_read){.what = n < 0 ? UA_RD_ALL : UA_RD_SOME, .n = n});
}

static PyObject *stream_readinto(StreamObject *st, PyObject *buf)
{
    ua_streamop *op = ua_read_op_new((PyObject *)st, read_step, "Stream.readinto", (ua_read){.what = UA_RD_INTO});
    if (!op)
        return NULL;
    if (PyObject_GetBuffer(buf, &op->view, PyBUF_WRITABLE) < 0) {
        Py_DECREF(op);
        return NULL;
    }
    op->has_view = 1;
    op->rq.into = &op->view;
    return (PyObject *)op;
}

static PyObject *stream_readexactly(StreamObject *st, PyObject *arg)
{
    Py_ssize_t n;
    if (ua_count_arg(arg, 0, "readexactly", &n) < 0)
        return NULL;
    return (PyObject *)ua_read_op_new((PyObject *)st, read_step, "Stream.readexactly",
                                      (ua_read){.what = UA_RD_EXACTLY, .n = n, .short_raises = 1});
}

static PyObject *stream_readline(StreamObject *st, PyObject *unused)
{
    /* a Stream's reader has no limit */
    return (PyObject *)ua_read_op_new((PyObject *)st, read_step, "Stream.readline", (ua_read){.what = UA_RD_LINE});
}

static PyObject *stream_write(StreamObject *st, PyObject *buf)
{
    Py_buffer view;
    Py_ssize_t off = 0, sz = -1;
    if (ua_get_data(buf, &view, &off, &sz, "write") < 0)
        return NULL;
    int rc;
    if (st->rd && !st->closed && st->rd->kind == IO_PY && !ua_linebuf_len(&st->out) && view.len &&
        !PyUnicode_Check(buf)) {
        /* As MicroPython's: an object is handed the caller's buffer itself
         * first; what it does not take is queued. */
        Py_ssize_t k = py_write_obj(SOCK(st), buf, (size_t)view.len);
        /* (write() is Python code: it may have closed the stream) */
        rc = k < 0 ? -1 : st->closed ? 0 : queue_out(st, (const char *)view.buf + k, (size_t)(view.len - k));
    } else {
        rc = stream_write_bytes(st, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *stream_drain(StreamObject *st, PyObject *unused)
{
    return (PyObject *)ua_op_new((PyObject *)st, drain_step, "Stream.drain");
}

static PyObject *stream_awrite(StreamObject *st, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return ua_awrite_op_new((PyObject *)st, awrite_step, "Stream.awrite", args, nargs, kwnames);
}

static PyObject *stream_close(StreamObject *st, PyObject *unused)
{
    /* As MicroPython: the socket is closed by wait_closed(). */
    Py_RETURN_NONE;
}

static PyObject *stream_wait_closed(StreamObject *st, PyObject *unused)
{
    return (PyObject *)ua_op_new((PyObject *)st, close_step, "Stream.wait_closed");
}

static PyObject *stream_get_extra_info(StreamObject *st, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get_extra_info() takes a name and an optional default");
        return NULL;
    }
    PyObject *name = args[0];
    if (check_init(st) < 0)
        return NULL;
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "socket") == 0)
        return Py_NewRef(SOCK(st));
    PyObject *extra = ua_extra_dict(&st->extra);
    PyObject *v = extra ? PyObject_GetItem(extra, name) : NULL;
    if (v || nargs == 1 || !PyErr_ExceptionMatches(PyExc_KeyError))
        return v;   /* as MicroPython, KeyError when absent and no default is given */
    PyErr_Clear();
    return Py_NewRef(args[1]);
}

static PyObject *stream_repr(StreamObject *st)
{
    if (!st->rd)
        return PyUnicode_FromFormat("<%s, not initialized>", Py_TYPE(st)->tp_name);
    return PyUnicode_FromFormat("<Stream %R%s>", SOCK(st), st->closed ? " closed" : "");
}

static PyObject *stream_get_s(StreamObject *st, void *closure)
{
    return check_init(st) < 0 ? NULL : Py_NewRef(SOCK(st));
}

/* stream.s = obj: read and write obj from now on (MicroPython's s is a
 * plain attribute). */
static int stream_set_s(StreamObject *st, PyObject *v, void *closure)
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete s");
        return -1;
    }
    return stream_set_sock(st, v, st->rd ? st->rd->limit : UA_NO_LIMIT);
}

static PyObject *stream_get_e(StreamObject *st, void *closure)
{
    return Py_XNewRef(ua_extra_dict(&st->extra));
}

static int stream_set_e(StreamObject *st, PyObject *v, void *closure)
{
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete e");
        return -1;
    }
    stream_set_extra(st, v);
    return 0;
}

static PyObject *stream_get_buffered(StreamObject *st, void *closure)
{
    return PyLong_FromSize_t(ua_linebuf_len(&st->out));
}

static int stream_traverse(StreamObject *st, visitproc visit, void *arg)
{
    Py_VISIT(st->rd);
    Py_VISIT(st->extra.dict);
    return 0;
}

static int stream_clear(StreamObject *st)
{
    Py_CLEAR(st->rd);
    Py_CLEAR(st->extra.dict);
    return 0;
}

static void stream_dealloc(StreamObject *st)
{
    PyObject_GC_UnTrack(st);
    stream_clear(st);
    ua_linebuf_free(&st->out);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static PyMethodDef stream_methods[] = {
    {"read", (PyCFunction)(void (*)(void))stream_read, METH_FASTCALL,
     "read(n=-1): awaitable; up to n bytes from one read (b'' at the end), or with n=-1 all until the end."},
    {"readinto", (PyCFunction)stream_readinto, METH_O,
     "readinto(buf): awaitable; one read into buf, the number of bytes (0 at the end)."},
    {"readexactly", (PyCFunction)stream_readexactly, METH_O,
     "readexactly(n): awaitable; n bytes, EOFError if the stream ends first."},
    {"readline", (PyCFunction)stream_readline, METH_NOARGS,
     "readline(): awaitable; a line with its b'\\n'; at the end the partial line, then b''."},
    {"write", (PyCFunction)stream_write, METH_O,
     "write(buf): hand the kernel what it takes now, buffer the rest (sent by drain())."},
    {"drain", (PyCFunction)stream_drain, METH_NOARGS,
     "drain(): awaitable; send everything buffered; always yields once."},
    {"awrite", (PyCFunction)(void (*)(void))stream_awrite, METH_FASTCALL | METH_KEYWORDS,
     "awrite(buf, off=0, sz=-1): awaitable; write(buf[off:off+sz]) then drain()."},
    {"awritestr", (PyCFunction)(void (*)(void))stream_awrite, METH_FASTCALL | METH_KEYWORDS,
     "awritestr(s): as awrite()."},
    {"close", (PyCFunction)stream_close, METH_NOARGS, "close(): as MicroPython, wait_closed() closes."},
    {"wait_closed", (PyCFunction)stream_wait_closed, METH_NOARGS,
     "wait_closed(): awaitable; close the socket."},
    {"aclose", (PyCFunction)stream_wait_closed, METH_NOARGS, "aclose(): as wait_closed()."},
    {"get_extra_info", (PyCFunction)(void (*)(void))stream_get_extra_info, METH_FASTCALL,
     "get_extra_info(name[, default]): 'peername', 'socket', ..."},
    {NULL},
};

static PyGetSetDef stream_getset[] = {
    {"s", (getter)stream_get_s, (setter)stream_set_s, "the socket (or stream object)", NULL},
    {"e", (getter)stream_get_e, (setter)stream_set_e, "the extra information (a dict)", NULL},
    {"buffered", (getter)stream_get_buffered, NULL, "bytes written but not yet sent", NULL},
    {NULL},
};

static PyTypeObject Stream_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Stream",
    .tp_basicsize = sizeof(StreamObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Stream(s, e={}, limit=None): a socket (plain or SSL) read and written in C, or any "
              "object with read/readline/readinto/write (waited for through its fileno() or "
              "ioctl()); StreamReader and StreamWriter are this class. limit: readline()'s line "
              "limit (None: no limit; past it, LimitOverrunError).",
    .tp_new = stream_tp_new,
    .tp_init = (initproc)stream_tp_init,
    .tp_dealloc = (destructor)stream_dealloc,
    .tp_traverse = (traverseproc)stream_traverse,
    .tp_clear = (inquiry)stream_clear,
    .tp_repr = (reprfunc)stream_repr,
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
};

/* ---- the accept loop ------------------------------------------------------------
 * Acceptor(sock, cb, spawn, raw=False): awaited by the server's task. For each
 * connection: spawn(cb(stream, stream)), or spawn(cb(sock, peername)) when raw
 * (the TLS glue, which handshakes first). A failing accept or cb is reported
 * and the server goes on. close() (or the task being cancelled) closes the
 * listening socket and ends it. */

typedef struct {
    PyObject_HEAD
    PyObject *sock, *cb, *spawn;
    LoopObject *loop;   /* the loop it runs on, once started */
    size_t limit;       /* each connection's line limit */
    int raw;
    int closed;
} AcceptorObject;

static void acceptor_close_listener(AcceptorObject *a)
{
    if (a->closed)
        return;
    a->closed = 1;
    ua_listener_close(a->loop ? a->loop : ua_running_loop_get(), a->sock);
}

static int acceptor_serve(PyObject *owner, PyObject *sock, const struct sockaddr_storage *peer)
{
    AcceptorObject *a = (AcceptorObject *)owner;
    PyObject *coro = NULL;
    if (a->raw) {
        PyObject *addr = ua_sockaddr_to_py(peer);
        coro = addr ? PyObject_CallFunctionObjArgs(a->cb, sock, addr, NULL) : NULL;
        Py_XDECREF(addr);
    } else {
        PyObject *st = stream_make(&Stream_Type, sock, NULL, a->limit);
        if (st && ua_extra_set_peer(&((StreamObject *)st)->extra, peer) < 0)
            Py_CLEAR(st);
        PyObject *args[2] = {st, st};
        coro = st ? PyObject_Vectorcall(a->cb, args, 2, NULL) : NULL;
        Py_XDECREF(st);
    }
    PyObject *task = coro ? PyObject_CallOneArg(a->spawn, coro) : NULL;
    Py_XDECREF(coro);
    Py_XDECREF(task);
    return task ? 0 : -1;
}

/* A connection could not be served (cb raised, or gave no coroutine): the
 * loop's exception handler hears of it, as of a task that failed. */
static void acceptor_report(PyObject *owner)
{
    AcceptorObject *a = (AcceptorObject *)owner;
    PyObject *value = ua_err_fetch();
    PyObject *ctx = value ? Py_BuildValue("{s:s,s:O}", "message", "start_server: a connection could not be served",
                                          "exception", value)
                          : NULL;
    PyObject *r = NULL;
    if (ctx && a->loop) {
        r = PyObject_CallMethod((PyObject *)a->loop, "call_exception_handler", "O", ctx);
        if (!r && PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();   /* a 2.0 loop: no handler to call */
    }
    if (!r) {
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(a->cb);
        else if (value) {
            ua_err_restore(value);
            value = NULL;
            PyErr_WriteUnraisable(a->cb);
        }
    }
    Py_XDECREF(r);
    Py_XDECREF(ctx);
    Py_XDECREF(value);
}

static PySendResult acceptor_step(AcceptorObject *a, PyObject **result)
{
    if (!a->loop && (a->loop = ua_running_loop_get()))
        Py_INCREF(a->loop);
    return ua_accept_step((PyObject *)a, a->sock, &a->closed, acceptor_serve, acceptor_report, result);
}

static PySendResult acceptor_send(AcceptorObject *a, PyObject *value, PyObject **result)
{
    PySendResult sr = acceptor_step(a, result);
    if (sr != PYGEN_NEXT)
        acceptor_close_listener(a);
    return sr;
}

static PyObject *acceptor_iternext(AcceptorObject *a)
{
    PyObject *result;
    PySendResult sr = acceptor_send(a, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *acceptor_send_method(AcceptorObject *a, PyObject *value)
{
    return ua_send_result(acceptor_iternext(a));
}

/* Cancelling the server's task throws here: close, then raise it. */
static PyObject *acceptor_throw(AcceptorObject *a, PyObject *args)
{
    acceptor_close_listener(a);
    return ua_raise_thrown(args);
}

static PyObject *acceptor_close(AcceptorObject *a, PyObject *unused)
{
    if (a->loop && !a->closed && ua_loop_check_thread(a->loop) < 0)   /* it unregisters from the loop */
        return NULL;
    acceptor_close_listener(a);
    Py_RETURN_NONE;
}

static PyObject *acceptor_tp_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sock", "cb", "spawn", "raw", "limit", NULL};
    PyObject *sock, *cb, *spawn, *limit = Py_None;
    int raw = 0;
    size_t lim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|pO:Acceptor", kwlist, &sock, &cb, &spawn, &raw,
                                     &limit) ||
        ua_limit_arg(limit, &lim) < 0)
        return NULL;
    if (!PyCallable_Check(cb) || !PyCallable_Check(spawn)) {
        PyErr_SetString(PyExc_TypeError, "Acceptor(): cb and spawn must be callable");
        return NULL;
    }
    AcceptorObject *a = (AcceptorObject *)type->tp_alloc(type, 0);
    if (!a)
        return NULL;
    a->sock = Py_NewRef(sock);
    a->cb = Py_NewRef(cb);
    a->spawn = Py_NewRef(spawn);
    a->raw = raw;
    a->limit = lim;
    return (PyObject *)a;
}

static int acceptor_traverse(AcceptorObject *a, visitproc visit, void *arg)
{
    Py_VISIT(a->sock);
    Py_VISIT(a->cb);
    Py_VISIT(a->spawn);
    Py_VISIT(a->loop);
    return 0;
}

static int acceptor_clear(AcceptorObject *a)
{
    if (a->sock)
        acceptor_close_listener(a);
    Py_CLEAR(a->sock);
    Py_CLEAR(a->cb);
    Py_CLEAR(a->spawn);
    Py_CLEAR(a->loop);
    return 0;
}

static void acceptor_dealloc(AcceptorObject *a)
{
    PyObject_GC_UnTrack(a);
    acceptor_clear(a);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *acceptor_get_closed(AcceptorObject *a, void *closure)
{
    return PyBool_FromLong(a->closed);
}

static PyMethodDef acceptor_methods[] = {
    {"send", (PyCFunction)acceptor_send_method, METH_O, NULL},
    {"throw", (PyCFunction)acceptor_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)acceptor_close, METH_NOARGS, "Stop listening; the accept loop ends."},
    {NULL},
};

static PyGetSetDef acceptor_getset[] = {
    {"closed", (getter)acceptor_get_closed, NULL, "the listening socket is closed", NULL},
    {NULL},
};

static PyMemberDef acceptor_members[] = {
    {"sock", T_OBJECT, offsetof(AcceptorObject, sock), READONLY, "the listening socket"},
    {NULL},
};

static PyAsyncMethods acceptor_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)acceptor_send,
};

static PyTypeObject Acceptor_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.v3.Acceptor",
    .tp_basicsize = sizeof(AcceptorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Acceptor(sock, cb, spawn, raw=False, limit=None): the accept loop of a v3 Server, awaited by its task.",
    .tp_new = acceptor_tp_new,
    .tp_dealloc = (destructor)acceptor_dealloc,
    .tp_traverse = (traverseproc)acceptor_traverse,
    .tp_clear = (inquiry)acceptor_clear,
    .tp_as_async = &acceptor_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)acceptor_iternext,
    .tp_methods = acceptor_methods,
    .tp_getset = acceptor_getset,
    .tp_members = acceptor_members,
};

int ua_v3_stream_ready(PyObject *module)
{
    if (!(str_write = PyUnicode_InternFromString("write")) || PyType_Ready(&Stream_Type) < 0 || PyType_Ready(&Acceptor_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Stream", (PyObject *)&Stream_Type) < 0 ||
        PyModule_AddObjectRef(module, "Acceptor", (PyObject *)&Acceptor_Type) < 0)
        return -1;
    return 0;
}
