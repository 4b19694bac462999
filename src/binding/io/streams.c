/* StreamReader and StreamWriter.
 *
 * Every method returns a StreamOp: a small C awaitable that does the work
 * when awaited and, when the socket would block, yields IORead/IOWrite of
 * the fd to the loop and tries again once resumed. Over a plain socket the
 * data path is recv()/send() on the fd straight from C; reads go first and
 * the poller is asked only when the kernel has nothing (so a busy connection
 * costs no epoll_ctl at all). uasyncio.v3's Stream (v3/stream.c) reads and
 * writes through the same functions: ua_read_step(), ua_sock_send(). */
#include "io.h"

#include <errno.h>
#include <sys/socket.h>

#define CHUNK 65536
#define READ_BUDGET 16   /* reads in a row before yielding to other tasks */

static PyObject *socket_type;       /* socket.socket */
static PyObject *str_io_refs, *str_ssl, *str_readline, *str_read, *str_readinto, *str_recv, *str_send, *str_write,
    *str_close;
static PyObject *chunk_size;        /* CHUNK as an int: an SSL socket's recv() argument */
static char scratch[CHUNK];         /* recv() target; used with the GIL held */

/* ---- helpers ---------------------------------------------------------------- */

PyObject *ua_syscall_for(int dir, PyObject *obj)
{
    return ua_syscall_new(dir == UA_POLL_READ ? &IORead_Type : &IOWrite_Type, obj);
}

/* The ssl module's classes, looked up once it is imported (no SSL object
 * can exist before): a stream that would block asks at every wait. */
static PyObject *ssl_socket_type, *ssl_want_read, *ssl_want_write;

static int ssl_known(void)
{
    if (ssl_socket_type)
        return 1;
    PyObject *ssl = PyImport_GetModule(str_ssl);
    if (!ssl) {
        PyErr_Clear();
        return 0;
    }
    ssl_socket_type = PyObject_GetAttrString(ssl, "SSLSocket");
    ssl_want_read = PyObject_GetAttrString(ssl, "SSLWantReadError");
    ssl_want_write = PyObject_GetAttrString(ssl, "SSLWantWriteError");
    Py_DECREF(ssl);
    if (!ssl_socket_type || !ssl_want_read || !ssl_want_write) {
        PyErr_Clear();
        Py_CLEAR(ssl_socket_type);
        Py_CLEAR(ssl_want_read);
        Py_CLEAR(ssl_want_write);
        return 0;
    }
    return 1;
}

int ua_ssl_want(void)
{
    if (!PyErr_Occurred())
        return 0;
    /* Set the error aside first: looking the module up may clear it. */
    PyObject *exc = ua_err_fetch();
    int r = 0;
    if (ssl_known()) {
        if (PyErr_GivenExceptionMatches(exc, ssl_want_read))
            r = 1;
        else if (PyErr_GivenExceptionMatches(exc, ssl_want_write))
            r = 2;
    }
    if (r)
        Py_XDECREF(exc);
    else
        ua_err_restore(exc);
    return r;
}

static int is_ssl_socket(PyObject *obj)
{
    if (!ssl_known())
        return 0;
    int r = PyObject_IsInstance(obj, ssl_socket_type);
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

typedef ua_streamop OpObject;

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

/* A round trip makes two ops (a read and a write): kept for reuse. */
static ua_freelist op_freelist;

ua_streamop *ua_op_new(PyObject *stream, ua_op_step step, const char *name)
{
    OpObject *op = (OpObject *)ua_freelist_new(&op_freelist, &StreamOp_Type);
    if (!op)
        return NULL;
    op->stream = Py_NewRef(stream);
    op->acc = NULL;
    op->step = step;
    op->name = name;
    op->off = op->sz = 0;
    op->waited = op->wrote = op->yielded = op->has_view = op->done = 0;
    PyObject_GC_Track(op);
    return op;   /* op->rq: only a read's, set by ua_read_op_new */
}

ua_streamop *ua_read_op_new(PyObject *stream, ua_op_step step, const char *name, ua_read rq)
{
    OpObject *op = ua_op_new(stream, step, name);
    if (op)
        op->rq = rq;
    return op;
}

static void op_dealloc(OpObject *op)
{
    PyObject_GC_UnTrack(op);
    op_clear(op);
    ua_freelist_free(&op_freelist, (PyObject *)op);
}

/* ---- the read buffer ------------------------------------------------------------ */

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

/* First-size blocks of streams that closed, kept for the next: a short
 * connection (an HTTP request) then buffers without a malloc and a free. */
#define SPARE_MAX 16
static PyObject *spare[SPARE_MAX];
static int nspare;

static void *bytes_resize(void *p, size_t n)
{
    PyObject *obj = p ? block_owner(p) : NULL;
    if (!n && obj && nspare < SPARE_MAX && Py_REFCNT(obj) == 1 &&
        PyBytes_GET_SIZE(obj) == UA_LINEBUF_FIRST_CAP) {
        spare[nspare++] = obj;
        return NULL;
    }
    if (!n || n > (size_t)PY_SSIZE_T_MAX - sizeof(PyBytesObject)) {
        Py_XDECREF(obj);
        return NULL;
    }
    if (!obj && n == UA_LINEBUF_FIRST_CAP && nspare)
        obj = spare[--nspare];
    else if (!obj)
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
    if (n > len) {   /* a miscounted length must fail, never hand out bytes past the buffer */
        PyErr_Format(PyExc_SystemError, "stream buffer: %zu bytes asked, %zu buffered", n, len);
        return NULL;
    }
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

/* ---- reading: one loop for StreamReader (2.0) and uasyncio.v3's Stream ----------- */

/* With nothing buffered, a read, a readline or a readexactly is often
 * answered by one recv() alone: build the result from the scratch buffer,
 * and keep only the rest. 1 with *result set, 0 if it is not answered yet,
 * -1 on error. */
static int answer_from_scratch(ReaderObject *r, const ua_read *q, size_t k, PyObject **result)
{
    size_t n;
    if (q->what == UA_RD_SOME) {
        n = q->n < 0 || (size_t)q->n > k ? k : (size_t)q->n;
    } else if (q->what == UA_RD_LINE) {
        const char *nl = memchr(scratch, '\n', k);
        if (!nl)
            return 0;
        n = (size_t)(nl - scratch) + 1;
        if (n > r->limit)
            return 0;   /* the buffered path raises */
    } else if (q->what == UA_RD_EXACTLY && (size_t)q->n <= k) {
        n = (size_t)q->n;
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

/* The connection failed (err: ECONNRESET...): what the peer sent and was
 * not read yet is gone, as the kernel's own queue is for MicroPython's read
 * and as CPython's asyncio drops its buffer. The read raises
 * OSError(err); the next ones find the end of the stream. -1. */
static int connection_lost(ReaderObject *r, int err)
{
    ua_linebuf_consume(&r->buf, ua_linebuf_len(&r->buf));
    r->eof = 1;
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* r holds bytes from before the loop last polled: has the peer reset the
 * connection since? One getsockopt() per stream and loop pass at most, and
 * none for a read answered from what the same pass received. 0, or -1 with
 * OSError (connection_lost). */
static int check_reset(ReaderObject *r)
{
    r->epoch = ua_poll_epoch;
    int fd = ua_fd_of(r->ios);
    if (fd < 0) {
        PyErr_Clear();   /* closed: the read itself tells */
        return 0;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || !err)
        return 0;
    return connection_lost(r, err);
}

/* Read more into r->buf. 1: got data or EOF; 2: answered q at once
 * (*result set); 0: would block (*wait set to the syscall to yield); -1:
 * error. With q a readinto() and nothing buffered, a plain socket's recv()
 * goes straight into the caller's buffer. */
static int fill(ReaderObject *r, PyObject **wait, const ua_read *q, PyObject **result)
{
    if (r->kind == IO_FD) {
        int fd = ua_fd_of(r->ios);
        if (fd < 0)
            return -1;
        int direct = q && q->what == UA_RD_INTO && !ua_linebuf_len(&r->buf);
        for (;;) {
            ssize_t k = direct ? recv(fd, q->into->buf, (size_t)q->into->len, MSG_DONTWAIT)
                               : recv(fd, scratch, CHUNK, MSG_DONTWAIT);
            if (k > 0)
                r->epoch = ua_poll_epoch;
            if (k > 0 && direct) {
                *result = PyLong_FromSsize_t(k);
                return *result ? 2 : -1;
            }
            if (k > 0) {
                if (q && !ua_linebuf_len(&r->buf)) {
                    int rc = answer_from_scratch(r, q, (size_t)k, result);
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
                /* r holds its socket, open while its fd reads: the poller
                 * may trust the registration of r's previous wait. */
                *wait = ua_syscall_owned(&IORead_Type, r->ios, r->id);
                return *wait ? 0 : -1;
            }
            return connection_lost(r, errno);
        }
    }
    if (r->kind == IO_WS) {
        PyErr_SetString(PyExc_TypeError, "a WebSocket's payloads are read by its own methods");
        return -1;
    }
/* IO_TRYFIRST: a non-blocking object that raises SSLWant*Error. */
    PyObject *data = PyObject_CallMethodOneArg(r->ios, str_recv, chunk_size);
    if (!data) {
        int want = ua_ssl_want();
        if (!want)
            return -1;
        *wait = ua_syscall_for(want == 1 ? UA_POLL_READ : UA_POLL_WRITE, r->polls);
        return *wait ? 0 : -1;
    }
    Py_buffer v;
    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0) {
        Py_DECREF(data);
        return -1;
    }
    int rc = 1;
    r->epoch = ua_poll_epoch;
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

/* Has the buffer what q asks for? 1 with *result set (or -1 on error,
 * e.g. a line over the limit), 0 if not yet. Every byte a read takes stays
 * in r->buf until the read returns, so a read timed out or cancelled part
 * way leaves them all for the next one. */
static int answer_from_buffer(ReaderObject *r, const ua_read *q, PyObject **result)
{
    size_t have = ua_linebuf_len(&r->buf), n;
    switch (q->what) {
    case UA_RD_SOME:
        if (!have && (q->n != 0 || r->kind == IO_PY))   /* IO_PY: read(0) asks the object */
            return 0;
        n = q->n < 0 || (size_t)q->n > have ? have : (size_t)q->n;
        break;
    case UA_RD_ALL:
        return 0;   /* the end decides */
    case UA_RD_INTO:
        if (!have && q->into->len)
            return 0;
        n = (size_t)q->into->len < have ? (size_t)q->into->len : have;
        memcpy(q->into->buf, ua_linebuf_peek(&r->buf), n);
        ua_linebuf_consume(&r->buf, n);
        *result = PyLong_FromSize_t(n);
        return *result ? 1 : -1;
    case UA_RD_LINE: {
        ssize_t line = ua_reader_find_line(r);
        if (line == -2)
            return -1;
        if (line < 0)
            return 0;
        n = (size_t)line;
        break;
    }
    default:   /* UA_RD_EXACTLY */
        if (have < (size_t)q->n)
            return 0;
        n = (size_t)q->n;
        break;
    }
    *result = ua_reader_take(r, n);
    return *result ? 1 : -1;
}

/* The stream has ended: as uasyncio 2.0 (q->say_done), first yield
 * IOReadDone(polls) (the loop forgets the object); then return what is
 * left: b"", or the partial line or bytes (a readinto(): 0; a short
 * readexactly() with short_raises: EOFError). */
static PySendResult at_end(ReaderObject *r, ua_read *q, PyObject **result)
{
    if (q->say_done) {
        q->say_done = 0;
        *result = ua_syscall_new(&IOReadDone_Type, r->polls);
        return *result ? PYGEN_NEXT : PYGEN_ERROR;
    }
    if (q->what == UA_RD_INTO) {
        *result = PyLong_FromLong(0);
    } else if (q->what == UA_RD_EXACTLY && q->short_raises) {
        ua_linebuf_consume(&r->buf, ua_linebuf_len(&r->buf));   /* as MicroPython: what came is gone */
        PyErr_SetNone(PyExc_EOFError);
        return PYGEN_ERROR;
    } else {
        *result = ua_reader_take(r, ua_linebuf_len(&r->buf));
    }
    return *result ? PYGEN_RETURN : PYGEN_ERROR;
}

/* One step of a read on the buffered kinds (IO_FD, IO_TRYFIRST). */
static PySendResult read_buffered(ReaderObject *r, ua_read *q, PyObject **result)
{
    if (r->epoch != ua_poll_epoch && ua_linebuf_len(&r->buf) && !r->eof && check_reset(r) < 0)
        return PYGEN_ERROR;
    for (;;) {
        int rc = answer_from_buffer(r, q, result);
        if (rc)
            return rc < 0 ? PYGEN_ERROR : PYGEN_RETURN;
        if (r->eof)
            return at_end(r, q, result);
        if (!r->budget) {
            /* A connection that always has data must not starve the others. */
            r->budget = READ_BUDGET;
            *result = Py_NewRef(Py_None);
            return PYGEN_NEXT;
        }
        PyObject *wait = NULL;
        rc = fill(r, &wait, q, result);
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
static PySendResult read_generic(ReaderObject *r, ua_read *q, PyObject **result)
{
    for (;;) {
        int rc = answer_from_buffer(r, q, result);
        if (rc)
            return rc < 0 ? PYGEN_ERROR : PYGEN_RETURN;
        if (q->ended)
            return at_end(r, q, result);
        if (!q->waited) {
            q->waited = 1;
            *result = ua_syscall_new(&IORead_Type, r->polls);
            return *result ? PYGEN_NEXT : PYGEN_ERROR;
        }
        q->waited = 0;
        PyObject *res;
        if (q->what == UA_RD_INTO) {
            /* as MicroPython's Stream: the object's readinto(), its result as it is */
            *result = PyObject_CallMethodOneArg(r->ios, str_readinto, q->into->obj);
            return *result ? PYGEN_RETURN : PYGEN_ERROR;
        }
        if (q->what == UA_RD_LINE) {
            res = PyObject_CallMethodNoArgs(r->ios, str_readline);
        } else {
            /* read(n); to the end: read(-1) until it gives b"" */
            Py_ssize_t n = q->what == UA_RD_SOME || q->what == UA_RD_ALL ? q->n
                                                                         : q->n - (Py_ssize_t)ua_linebuf_len(&r->buf);
            PyObject *arg = PyLong_FromSsize_t(n);
            res = arg ? PyObject_CallMethodOneArg(r->ios, str_read, arg) : NULL;
            Py_XDECREF(arg);
        }
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
        if (q->what == UA_RD_SOME && v.len) {   /* as it came, no copy */
            PyBuffer_Release(&v);
            *result = res;
            return PYGEN_RETURN;
        }
        q->ended = v.len == 0;
        rc = append(r, v.buf, (size_t)v.len);
        PyBuffer_Release(&v);
        Py_DECREF(res);
        if (rc < 0)
            return PYGEN_ERROR;
    }
}

PySendResult ua_read_step(ReaderObject *r, ua_read *q, PyObject **result)
{
    *result = NULL;
    return r->kind == IO_PY ? read_generic(r, q, result) : read_buffered(r, q, result);
}

/* ---- writing ---------------------------------------------------------------------- */

/* What a Python-level write() or send() is given: a read-only memoryview
 * over a BufferSlice, which holds an export of the data's owner. A write()
 * may keep its argument (a test double, a batching sink): the view then
 * keeps the owner alive, and a bytearray cannot be resized under it. */
typedef struct {
    PyObject_HEAD
    Py_buffer src;        /* an export of the owner (src.obj NULL: none yet) */
    Py_ssize_t off, len;  /* the part of it shown */
} SliceObject;

static int slice_getbuffer(SliceObject *sl, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)sl, (char *)sl->src.buf + sl->off, sl->len, 1, flags);
}

static int slice_traverse(SliceObject *sl, visitproc visit, void *arg)
{
    Py_VISIT(sl->src.obj);
    return 0;
}

static void slice_dealloc(SliceObject *sl)
{
    PyObject_GC_UnTrack(sl);
    if (sl->src.obj)
        PyBuffer_Release(&sl->src);
    PyObject_GC_Del(sl);
}

static PyBufferProcs slice_as_buffer = {.bf_getbuffer = (getbufferproc)slice_getbuffer};

static PyTypeObject Slice_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.BufferSlice",
    .tp_basicsize = sizeof(SliceObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Part of the data a stream hands to a write() or send(), read-only; it keeps the data's\n"
              "owner alive (what the memoryview those methods are given is over).",
    .tp_dealloc = (destructor)slice_dealloc,
    .tp_traverse = (traverseproc)slice_traverse,
    .tp_as_buffer = &slice_as_buffer,
};

/* The n bytes at p, for Python code to read: p lies in from, an export the
 * caller holds, and the memoryview returned holds one of its own. Memory
 * no object owns (from NULL: a stream's own buffer, which moves and is
 * freed) is copied into a bytes object. */
static PyObject *data_for_python(const Py_buffer *from, const char *p, Py_ssize_t n)
{
    if (!from || !from->obj)
        return PyBytes_FromStringAndSize(p, n);
    SliceObject *sl = PyObject_GC_New(SliceObject, &Slice_Type);
    if (!sl)
        return NULL;
    sl->src.obj = NULL;
    sl->off = p - (const char *)from->buf;
    sl->len = n;
    PyObject *mv = NULL;
    if (PyObject_GetBuffer(from->obj, &sl->src, PyBUF_SIMPLE) == 0) {
        if (sl->src.len == from->len) {
            PyObject_GC_Track(sl);
            mv = PyMemoryView_FromObject((PyObject *)sl);
        } else {
            PyErr_SetString(PyExc_BufferError, "the data to write changed size while being written");
        }
    }
    Py_DECREF(sl);
    return mv;
}

/* The count a Python-level write() or send() returned for the n bytes it
 * was given (None, where none_ok: 0): 0..n, else -1 with OSError, as
 * CPython's buffered writer says of a raw write(). Trusted, a count out of
 * range would move the data pointer outside the buffer. */
static Py_ssize_t count_taken(PyObject *res, Py_ssize_t n, const char *what, int none_ok)
{
    if (res == Py_None && none_ok)
        return 0;
    Py_ssize_t k = PyLong_Check(res) ? PyLong_AsSsize_t(res) : -1;
    if (k >= 0 && k <= n)
        return k;
    PyErr_Clear();   /* an OverflowError: out of range all the same */
    PyErr_Format(PyExc_OSError, "%s() returned %R: not a count of bytes between 0 and %zd (what it was given)",
                 what, res, n);
    return -1;
}

/* ua_sock_send(), static so that write_step's copy is inlined. from: an
 * export that holds p (or NULL: see data_for_python). */
static inline Py_ssize_t sock_send(PyObject *s, int kind, const Py_buffer *from, const char *p, size_t n,
                                   int *want)
{
    *want = UA_POLL_WRITE;
    if (kind == IO_FD) {
        int fd = ua_fd_of(s);
        if (fd < 0)
            return -1;
        for (;;) {
            ssize_t k = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (k >= 0)
                return k;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    /* An SSL socket: its send() raises SSLWant*Error when it would block.
     * A retry must pass the same leading bytes, and no fewer of them, as
     * OpenSSL asks: both callers keep what is unsent where it was, and every
     * call offers at most CHUNK (so a copy costs no more than that). */
    if (n > CHUNK)
        n = CHUNK;
    PyObject *data = data_for_python(from, p, (Py_ssize_t)n);
    PyObject *res = data ? PyObject_CallMethodOneArg(s, str_send, data) : NULL;
    Py_XDECREF(data);
    if (!res) {
        int w = ua_ssl_want();
        if (!w)
            return -1;
        *want = w == 1 ? UA_POLL_READ : UA_POLL_WRITE;
        return 0;
    }
    Py_ssize_t k = count_taken(res, (Py_ssize_t)n, "send", 0);
    Py_DECREF(res);
    return k;
}

Py_ssize_t ua_sock_send(PyObject *s, int kind, const char *p, size_t n, int *want)
{
    return sock_send(s, kind, NULL, p, n, want);
}

int ua_get_data(PyObject *buf, Py_buffer *view, Py_ssize_t *off, Py_ssize_t *sz, const char *what)
{
    PyObject *owner = buf;
    if (PyUnicode_Check(buf)) {
        owner = PyUnicode_AsUTF8String(buf);
        if (!owner)
            return -1;
    } else if (!PyObject_CheckBuffer(buf)) {
        PyErr_Format(PyExc_TypeError, "%s() takes bytes-like data or str, not %.100s", what,
                     Py_TYPE(buf)->tp_name);
        return -1;
    } else {
        Py_INCREF(owner);
    }
    int rc = PyObject_GetBuffer(owner, view, PyBUF_SIMPLE);
    Py_DECREF(owner);
    if (rc < 0)
        return -1;
    Py_ssize_t len = view->len;
    if (*sz == -1)
        *sz = len - *off;
    if (*off < 0 || *sz < 0 || *off > len || *sz > len - *off) {
        PyErr_Format(PyExc_ValueError, "%s(): off=%zd, sz=%zd out of range for %zd bytes", what, *off, *sz, len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PySendResult write_step(OpObject *op, WriterObject *w, PyObject **result)
{
    while (op->sz > 0) {
        const char *p = (const char *)op->view.buf + op->off;
        Py_ssize_t k;
        if (w->kind != IO_PY) {
            int want;
            k = sock_send(w->s, w->kind, &op->view, p, (size_t)op->sz, &want);
            if (k < 0)
                return PYGEN_ERROR;
            if (!k) {
                *result = ua_syscall_for(want, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
        } else {
            if (!op->waited && op->wrote) {
                /* 2.0 order after a partial write: wait, then write again. */
                op->waited = 1;
                *result = ua_syscall_new(&IOWrite_Type, w->s);
                return *result ? PYGEN_NEXT : PYGEN_ERROR;
            }
            op->waited = 0;
            PyObject *mv = data_for_python(&op->view, p, op->sz);
            PyObject *res = mv ? PyObject_CallMethodOneArg(w->s, str_write, mv) : NULL;
            Py_XDECREF(mv);
            if (!res)
                return PYGEN_ERROR;
            k = count_taken(res, op->sz, "write", 1);   /* None: nothing taken yet, as 2.0 */
            Py_DECREF(res);
            if (k < 0)
                return PYGEN_ERROR;
            op->wrote = 1;
            if (k == 0) {
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
    if (ua_get_data(buf, &op->view, &off, &sz, "awrite") < 0)
        return -1;
    op->has_view = 1;
    op->off = off;
    op->sz = sz;
    op->wrote = op->waited = 0;
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
    PyObject *refs = PyObject_GetAttr(obj, str_io_refs);
    if (!refs) {
        PyErr_Clear();
        return 0;
    }
    int unshared = PyLong_Check(refs) && PyLong_AsLong(refs) <= 0;
    Py_DECREF(refs);
    return unshared;
}

int ua_sock_close(PyObject *obj)
{
    if (ua_io_closing(obj) < 0)
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

/* ---- the steps of StreamReader's and StreamWriter's ops ---------------------------- */

static PySendResult reader_read_step(OpObject *op, PyObject **result)
{
    return ua_read_step((ReaderObject *)op->stream, &op->rq, result);
}

static PySendResult reader_close_step(OpObject *op, PyObject **result)
{
    if (ua_sock_close(((ReaderObject *)op->stream)->polls) < 0)
        return PYGEN_ERROR;
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PySendResult writer_write_step(OpObject *op, PyObject **result)
{
    PySendResult sr = write_step(op, (WriterObject *)op->stream, result);
    if (sr == PYGEN_RETURN)
        *result = Py_NewRef(Py_None);
    return sr;
}

static PySendResult writer_writeiter_step(OpObject *op, PyObject **result)
{
    return writeiter_step(op, (WriterObject *)op->stream, result);
}

static PySendResult writer_close_step(OpObject *op, PyObject **result)
{
    WriterObject *w = (WriterObject *)op->stream;
    if (!op->yielded) {
        /* As uasyncio 2.0, whatever s is: IOWriteDone(s) (the loop stops
         * polling it for writing), then the close. */
        op->yielded = 1;
        *result = ua_syscall_new(&IOWriteDone_Type, w->s);
        return *result ? PYGEN_NEXT : PYGEN_ERROR;
    }
    if (ua_sock_close(w->s) < 0)
        return PYGEN_ERROR;
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

/* ---- the op's protocol -------------------------------------------------------------- */

static PySendResult op_send(OpObject *op, PyObject *value, PyObject **result)
{
    *result = NULL;
    if (op->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited stream operation");
        return PYGEN_ERROR;
    }
    PySendResult sr = op->step(op, result);
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


/* Thrown into (the task awaiting it was cancelled, say): the operation is
 * abandoned, having consumed nothing, and the exception goes on. */
static PyObject *op_throw(OpObject *op, PyObject *args)
{
    op->done = 1;
    op_release_view(op);
    return ua_raise_thrown(args);
}

static PyObject *op_close(OpObject *op, PyObject *unused)
{
    op->done = 1;
    op_release_view(op);
    Py_RETURN_NONE;
}

static PyObject *op_repr(OpObject *op)
{
    return PyUnicode_FromFormat("<%s of %R>", op->name, op->stream);
}

static PyMethodDef op_methods[] = {
    {"send", (PyCFunction)op_send_method, METH_O, NULL},
    {"throw", (PyCFunction)op_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)op_close, METH_NOARGS, NULL},
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
    .tp_doc = "An awaitable stream operation (what the methods of StreamReader, StreamWriter and\n"
              "uasyncio.v3's Stream return).",
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
    r->epoch = ua_poll_epoch;
    r->id = ua_stream_id();
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

/* A read of r: as uasyncio 2.0, IOReadDone at the end of the stream. */
static PyObject *reader_op(ReaderObject *r, int what, Py_ssize_t n, const char *name)
{
    return (PyObject *)ua_read_op_new((PyObject *)r, reader_read_step, name,
                                      (ua_read){.what = (uint8_t)what, .n = n, .say_done = 1});
}

static PyObject *reader_read(ReaderObject *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t n = -1;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "read() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && ua_count_arg(args[0], -1, "read", &n) < 0)
        return NULL;
    return reader_op(r, UA_RD_SOME, n, "StreamReader.read");
}

static PyObject *reader_readline(ReaderObject *r, PyObject *unused)
{
    return reader_op(r, UA_RD_LINE, 0, "StreamReader.readline");
}

static PyObject *reader_readexactly(ReaderObject *r, PyObject *arg)
{
    Py_ssize_t n;
    if (ua_count_arg(arg, 0, "readexactly", &n) < 0)
        return NULL;
    /* nothing reserved: the bytes gather in the buffer as they come */
    return reader_op(r, UA_RD_EXACTLY, n, "StreamReader.readexactly");
}

static PyObject *reader_aclose(ReaderObject *r, PyObject *unused)
{
    return (PyObject *)ua_op_new((PyObject *)r, reader_close_step, "StreamReader.aclose");
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

PyObject *ua_writer_new(PyObject *s)
{
    WriterObject *w = PyObject_GC_New(WriterObject, &Writer_Type);
    if (!w)
        return NULL;
    w->s = Py_NewRef(s);
    memset(&w->extra, 0, sizeof(w->extra));
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
    w->extra.dict = extra == Py_None ? NULL : Py_NewRef(extra);   /* tp_alloc zeroed the rest */
    w->kind = (uint8_t)io_kind(s, s);
    return (PyObject *)w;
}

PyObject *ua_awrite_op_new(PyObject *stream, ua_op_step step, const char *name, PyObject *const *args,
                           Py_ssize_t nargs, PyObject *kwnames)
{
    static char *kwlist[] = {"buf", "off", "sz", NULL};
    PyObject *buf;
    Py_ssize_t off = 0, sz = -1;
    if (nargs == 1 && !kwnames) {
        /* awrite(buf), the usual call: no argument parsing (~500 instructions). */
        buf = args[0];
    } else {
        PyObject *tuple = PyTuple_New(nargs), *kwds = NULL;
        for (Py_ssize_t i = 0; tuple && i < nargs; i++)
            PyTuple_SET_ITEM(tuple, i, Py_NewRef(args[i]));
        if (tuple && kwnames && PyTuple_GET_SIZE(kwnames)) {
            kwds = PyDict_New();
            for (Py_ssize_t i = 0; kwds && i < PyTuple_GET_SIZE(kwnames); i++)
                if (PyDict_SetItem(kwds, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                    Py_CLEAR(kwds);
            if (!kwds)
                Py_CLEAR(tuple);
        }
        int ok = tuple && PyArg_ParseTupleAndKeywords(tuple, kwds, "O|nn:awrite", kwlist, &buf, &off, &sz);
        Py_XDECREF(tuple);   /* buf stays alive: the caller holds it in args */
        Py_XDECREF(kwds);
        if (!ok)
            return NULL;
    }
    OpObject *op = ua_op_new(stream, step, name);
    if (op && op_set_buffer(op, buf, off, sz) < 0)
        Py_CLEAR(op);
    return (PyObject *)op;
}

static PyObject *writer_awrite(WriterObject *w, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return ua_awrite_op_new((PyObject *)w, writer_write_step, "StreamWriter.awrite", args, nargs, kwnames);
}

static PyObject *writer_awriteiter(WriterObject *w, PyObject *iterable)
{
    PyObject *it = PyObject_GetIter(iterable);
    if (!it)
        return NULL;
    OpObject *op = ua_op_new((PyObject *)w, writer_writeiter_step, "StreamWriter.awriteiter");
    if (!op) {
        Py_DECREF(it);
        return NULL;
    }
    op->acc = it;
    return (PyObject *)op;
}

static PyObject *writer_aclose(WriterObject *w, PyObject *unused)
{
    return (PyObject *)ua_op_new((PyObject *)w, writer_close_step, "StreamWriter.aclose");
}

static PyObject *writer_get_extra_info(WriterObject *w, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "default", NULL};
    PyObject *name, *dflt = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:get_extra_info", kwlist, &name, &dflt))
        return NULL;
    if (PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "socket") == 0)
        return Py_NewRef(w->s);
    PyObject *extra = ua_extra_dict(&w->extra);
    if (!extra)
        return NULL;
    if (!PyDict_Check(extra))
        return PyObject_CallMethod(extra, "get", "OO", name, dflt);
    PyObject *v = PyDict_GetItemWithError(extra, name);
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
    Py_VISIT(w->extra.dict);
    return 0;
}

static int writer_clear(WriterObject *w)
{
    Py_CLEAR(w->s);
    Py_CLEAR(w->extra.dict);
    return 0;
}

static void writer_dealloc(WriterObject *w)
{
    PyObject_GC_UnTrack(w);
    writer_clear(w);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef writer_methods[] = {
    {"awrite", (PyCFunction)(void (*)(void))writer_awrite, METH_FASTCALL | METH_KEYWORDS,
     "awrite(buf, off=0, sz=-1): awaitable; writes buf[off:off+sz] completely."},
    {"awriteiter", (PyCFunction)writer_awriteiter, METH_O, "awriteiter(iterable): awaitable; awrite each item."},
    {"aclose", (PyCFunction)writer_aclose, METH_NOARGS, "aclose(): awaitable; unregister and close."},
    {"get_extra_info", (PyCFunction)(void (*)(void))writer_get_extra_info, METH_VARARGS | METH_KEYWORDS,
     "get_extra_info(name, default=None): 'peername', 'socket', ..."},
    {NULL},
};

static PyMemberDef writer_members[] = {
    {"s", T_OBJECT, offsetof(WriterObject, s), READONLY, "the socket (or object) written to"},
    {NULL},
};

static PyObject *writer_get_extra(WriterObject *w, void *closure)
{
    return Py_XNewRef(ua_extra_dict(&w->extra));
}

static PyGetSetDef writer_getset[] = {
    {"extra", (getter)writer_get_extra, NULL, "extra information (a dict: 'peername', ...)", NULL},
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
    .tp_getset = writer_getset,
};

int ua_streams_ready(PyObject *module)
{
    PyObject *socket_mod = PyImport_ImportModule("socket");
    if (!socket_mod)
        return -1;
    socket_type = PyObject_GetAttrString(socket_mod, "socket");
    Py_DECREF(socket_mod);
    if (!socket_type)
        return -1;
    if (!(str_ssl = PyUnicode_InternFromString("ssl")) || !(str_io_refs = PyUnicode_InternFromString("_io_refs")) ||
        !(str_readline = PyUnicode_InternFromString("readline")) ||
        !(str_read = PyUnicode_InternFromString("read")) || !(str_recv = PyUnicode_InternFromString("recv")) ||
        !(str_readinto = PyUnicode_InternFromString("readinto")) ||
        !(chunk_size = PyLong_FromLong(CHUNK)) || !(str_send = PyUnicode_InternFromString("send")) ||
        !(str_write = PyUnicode_InternFromString("write")) || !(str_close = PyUnicode_InternFromString("close")))
        return -1;
    if (PyType_Ready(&StreamOp_Type) < 0 || PyType_Ready(&Reader_Type) < 0 || PyType_Ready(&Writer_Type) < 0 ||
        PyType_Ready(&Slice_Type) < 0)
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
