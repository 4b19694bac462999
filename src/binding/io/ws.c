/* WSConn: a WebSocket connection on a stream, server side (what
 * uasyncio.websocket.server.WSReader returns, and WSWriter too).
 *
 * Reading parses frames straight out of the StreamReader's buffer: the
 * header, then the whole payload, unmasked in place, checked (UTF-8 of text,
 * fragment order, sizes) by the protocol core in src/core/wsproto.c, and
 * appended to the message being put together. Pings are answered, a close is
 * answered and ends the stream, and any protocol error closes the
 * connection with its status (1002, 1007, 1009).
 *
 * Every frame is sent whole, header and payload in one write. Frames queue
 * in outq and one operation at a time (the "flusher") writes them, so a pong
 * never lands inside a half-written message. */
#include "io.h"
#include "wsproto.h"

#define FILL_BUDGET 16
#define BIG_FRAME (256 * 1024)   /* a frame's payload at least this long is handed over, not copied */

/* A StreamReader (its base) over the payloads of the messages: base.buf
 * holds payload bytes received and not yet returned, base.polls the socket,
 * base.ios the StreamReader the frames come from. */
typedef struct {
    ReaderObject base;
    PyObject *reader;       /* a ReaderObject over a socket or TLS socket */
    PyObject *writer;       /* a StreamWriter */
    ua_ws_conn conn;
    ua_linebuf msg;         /* the data message being put together */
    size_t front_len;       /* bytes of base.buf that are the rest of the message being read */
    uint8_t front_text;     /* that message is text */
    uint8_t got_empty;      /* an empty message came (recv() returns it) */
    uint8_t eof;            /* no more messages: read() gives b"" */
    uint8_t sock_closed;
    PyObject *outq;         /* frames (bytes) waiting to be written */
    PyObject *sending;      /* the write in progress, or NULL */
    PyObject *blocked;      /* ops parked until that write is done (list) */
    int close_code;         /* the peer's close status, or ours on error; 1006 if none */
} WSConnObject;

enum { WS_READ, WS_RECV, WS_SEND, WS_CLOSE, WS_READLINE, WS_READEXACTLY };

typedef struct {
    PyObject_HEAD
    WSConnObject *ws;
    PyObject *frame;        /* WS_SEND/WS_CLOSE: the frame to queue */
    Py_ssize_t n;           /* WS_READ: at most n bytes (-1: the whole message); WS_READEXACTLY: n */
    uint8_t kind;
    uint8_t queued;         /* the frame is in outq */
    uint8_t flushing;       /* this op drives ws->sending */
    uint8_t budget;
    uint8_t done;
    uint8_t parked;         /* in ws->blocked, its task asleep */
    PyObject *task;         /* the parked task */
    LoopObject *loop;
    ua_waiter_link link;    /* in the loop's list while parked: close() finalizes its task */
} WSOpObject;

extern PyTypeObject WSConn_Type, WSOp_Type;

/* ---- frames out ------------------------------------------------------------ */

static PyObject *build_frame(int opcode, const char *data, size_t len)
{
    uint8_t hdr[UA_WS_MAX_HEADER];
    size_t h = ua_ws_build_header(hdr, 1, opcode, len);
    PyObject *f = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(h + len));
    if (!f)
        return NULL;
    memcpy(PyBytes_AS_STRING(f), hdr, h);
    if (len)
        memcpy(PyBytes_AS_STRING(f) + h, data, len);
    return f;
}

static int queue_frame(WSConnObject *ws, PyObject *frame)
{
    return frame ? PyList_Append(ws->outq, frame) : -1;
}

static int queue_close(WSConnObject *ws, int code, const char *reason, size_t reason_len)
{
    if (ws->conn.close_sent)
        return 0;
    ws->conn.close_sent = 1;
    uint8_t payload[2 + UA_WS_MAX_REASON];
    size_t n = ua_ws_build_close(payload, code, reason, reason_len);
    PyObject *f = build_frame(UA_WS_CLOSE, (const char *)payload, n);
    int rc = queue_frame(ws, f);
    Py_XDECREF(f);
    return rc;
}

/* The op's task sleeps (it yields False) until the write in progress ends. */
static int park_behind(WSOpObject *op)
{
    LoopObject *loop = ua_running_loop_get();
    if (!loop || !loop->current) {
        PyErr_SetString(PyExc_RuntimeError, "WebSocket operations must be awaited inside a task");
        return -1;
    }
    if (PyList_Append(op->ws->blocked, (PyObject *)op) < 0)
        return -1;
    Py_XSETREF(op->task, ua_loop_owner_of(loop->current));
    Py_XSETREF(op->loop, (LoopObject *)Py_NewRef(loop));
    op->parked = 1;
    ua_loop_link_waiter(loop, &op->link, op->task);
    return 0;
}

static void abandon(WSOpObject *op);

static void unpark(WSOpObject *op)
{
    if (!op->parked)
        return;
    op->parked = 0;
    ua_loop_unlink_waiter(&op->link);
    Py_ssize_t i = op->ws ? PySequence_Index(op->ws->blocked, (PyObject *)op) : -1;
    if (i >= 0)
        PySequence_DelItem(op->ws->blocked, i);
    PyErr_Clear();
}

/* The write in progress is done: every parked op's task runs again. */
static int wake_blocked(WSConnObject *ws)
{
    PyObject *ops = ws->blocked;
    if (!PyList_GET_SIZE(ops))
        return 0;
    ws->blocked = PyList_New(0);
    if (!ws->blocked) {
        ws->blocked = ops;
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ops); i++) {
        WSOpObject *op = (WSOpObject *)PyList_GET_ITEM(ops, i);
        op->parked = 0;
        ua_loop_unlink_waiter(&op->link);
        if (rc == 0 && !op->loop->closed)   /* the write may end in another loop's thread */
            rc = ua_loop_wake_owner_threadsafe(op->loop, op->task);
    }
    Py_DECREF(ops);
    return rc;
}

/* Write what is queued. PYGEN_RETURN when outq is empty, PYGEN_NEXT with
 * something to yield, or PYGEN_ERROR. Only the op holding op->flushing (or
 * one that can take it) writes; another waits its turn. */
static PySendResult flush(WSOpObject *op, PyObject **result)
{
    WSConnObject *ws = op->ws;
    for (;;) {
        if (ws->sending && !op->flushing) {   /* someone else writes: wait for it */
            if (!op->parked && park_behind(op) < 0)
                return PYGEN_ERROR;
            *result = Py_NewRef(Py_False);
            return PYGEN_NEXT;
        }
        if (!ws->sending) {
            if (!PyList_GET_SIZE(ws->outq))
                return PYGEN_RETURN;
            if (ws->sock_closed) {   /* nothing queued can be sent any more */
                PyList_SetSlice(ws->outq, 0, PyList_GET_SIZE(ws->outq), NULL);
                return PYGEN_RETURN;   /* a sender finds out in ws_step */
            }
            PyObject *frame = Py_NewRef(PyList_GET_ITEM(ws->outq, 0));
            if (PySequence_DelItem(ws->outq, 0) < 0) {
                Py_DECREF(frame);
                return PYGEN_ERROR;
            }
            ws->sending = PyObject_CallMethod(ws->writer, "awrite", "O", frame);
            Py_DECREF(frame);
            if (!ws->sending)
                return PYGEN_ERROR;
            op->flushing = 1;
        }
        PyObject *r;
        PySendResult sr = PyIter_Send(ws->sending, Py_None, &r);
        if (sr == PYGEN_NEXT) {
            *result = r;
            return PYGEN_NEXT;
        }
        Py_CLEAR(ws->sending);
        op->flushing = 0;
        if (wake_blocked(ws) < 0 || sr == PYGEN_ERROR) {
            if (sr != PYGEN_ERROR)
                Py_DECREF(r);
            return PYGEN_ERROR;
        }
        Py_DECREF(r);
    }
}

static int close_socket(WSConnObject *ws)
{
    if (ws->sock_closed)
        return 0;
    if (ua_io_check_closing(ws->base.polls) < 0)   /* a task of a loop in another thread waits on it */
        return -1;
    ws->sock_closed = 1;
    PyObject *op = PyObject_CallMethod(ws->writer, "aclose", NULL);
    if (!op)
        return -1;
    /* Closing never waits: a 2.0 writer's aclose() yields IOWriteDone first
     * (the loop need not see it: the close itself tells the loop), then
     * closes. A few steps at most. */
    PyObject *r;
    PySendResult sr = PyIter_Send(op, Py_None, &r);
    for (int n = 0; sr == PYGEN_NEXT && n < 4; n++) {
        Py_DECREF(r);
        sr = PyIter_Send(op, Py_None, &r);
    }
    Py_DECREF(op);
    if (sr == PYGEN_ERROR)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ---- frames in ------------------------------------------------------------------ */

/* The connection failed with a close status: tell the peer, stop reading. */
static int fail(WSConnObject *ws, int status)
{
    ws->eof = 1;
    ws->close_code = status;
    return queue_close(ws, status, NULL, 0);
}

/* Act on a whole control frame. */
static int on_control(WSConnObject *ws, int opcode, const uint8_t *p, size_t n)
{
    if (opcode == UA_WS_PING) {
        if (ws->conn.close_sent)
            return 0;
        PyObject *f = build_frame(UA_WS_PONG, (const char *)p, n);
        int rc = queue_frame(ws, f);
        Py_XDECREF(f);
        return rc;
    }
    if (opcode != UA_WS_CLOSE)
        return 0;   /* a pong: nothing to do */
    int code;
    const uint8_t *reason;
    size_t reason_len;
    int rc = ua_ws_parse_close(p, n, &code, &reason, &reason_len);
    if (rc < 0)
        return fail(ws, -rc);
    ws->eof = 1;
    ws->close_code = code;
    /* Answer with the same status (1005 "none" answers with an empty close). */
    return queue_close(ws, code, NULL, 0);
}

/* A whole message: its payload joins base.buf (the message's storage
 * itself when base.buf is empty, so no copy). */
static int deliver(WSConnObject *ws, int text)
{
    ua_linebuf *pb = &ws->base.buf;
    size_t mlen = ua_linebuf_len(&ws->msg);
    if (!ua_linebuf_len(pb)) {
        ua_linebuf_free(pb);
        *pb = ws->msg;
        ua_pybuf_init(&ws->msg);
        ws->front_len = mlen;
    } else {
        /* Only a readline() or readexactly() asks for a message while
         * payload is buffered: from then on the rest counts as one. */
        if (ua_linebuf_append(pb, ua_linebuf_peek(&ws->msg), mlen) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        ua_linebuf_consume(&ws->msg, mlen);
        ws->front_len = ua_linebuf_len(pb);
    }
    ws->front_text = (uint8_t)text;
    ws->got_empty = mlen == 0;
    return 0;
}

/* Read frames until a message is whole (it is then in base.buf) or the
 * stream ends (ws->eof). PYGEN_RETURN then, PYGEN_NEXT to wait, PYGEN_ERROR. */
static PySendResult read_message(WSOpObject *op, PyObject **result)
{
    WSConnObject *ws = op->ws;
    ReaderObject *r = (ReaderObject *)ws->reader;
    int whole = 0;
    while (!whole && !ws->eof) {
        size_t have = ua_linebuf_len(&r->buf);
        ua_ws_header h;
        int n = have ? ua_ws_parse_header((const uint8_t *)ua_linebuf_peek(&r->buf), have, &h,
                                          &ws->conn.limits)
                     : 0;
        if (n < 0) {
            if (fail(ws, -n) < 0)
                return PYGEN_ERROR;
            break;
        }
        if (n == 0 || have < (size_t)n + h.len) {
            if (r->eof) {   /* the peer went away without a close frame */
                ws->eof = 1;
                ws->close_code = UA_WS_STATUS_ABNORMAL;
                ws->conn.close_sent = 1;   /* nobody to tell */
                break;
            }
            if (!op->budget) {
                op->budget = FILL_BUDGET;
                *result = Py_NewRef(Py_None);
                return PYGEN_NEXT;
            }
            PyObject *wait = NULL;
            int rc = ua_reader_fill(r, &wait);
            if (rc < 0)
                return PYGEN_ERROR;
            if (rc == 0) {
                op->budget = FILL_BUDGET;
                *result = wait;
                return PYGEN_NEXT;
            }
            op->budget--;
            continue;
        }
        /* A whole frame is buffered: check it, unmask it, take it. */
        int act = ua_ws_on_frame_start(&ws->conn, &h);
        if (act < 0) {
            if (fail(ws, -act) < 0)
                return PYGEN_ERROR;
            break;
        }
        uint8_t *payload = (uint8_t *)r->buf.data + r->buf.start + n;
        size_t len = (size_t)h.len;
        ua_ws_unmask(payload, len, h.mask, 0);
        int rc = ua_ws_on_data(&ws->conn, payload, len);
        uint8_t control[UA_WS_MAX_CONTROL];
        int text = ws->conn.opcode == UA_WS_TEXT;
        size_t frame_len = (size_t)n + len;
        if (rc == 0 && act == UA_WS_DATA_FRAME && h.fin && !ua_linebuf_len(&ws->msg) && len >= BIG_FRAME &&
            ua_linebuf_len(&r->buf) - frame_len <= len / 4) {
            /* A large message in one frame: the reader's storage becomes the
             * message's (its header skipped), so it is never in memory twice. */
            size_t cap;
            char *block = ua_linebuf_detach(&r->buf, frame_len, &cap);
            if (!block) {
                PyErr_NoMemory();
                return PYGEN_ERROR;
            }
            ua_linebuf_adopt(&ws->msg, block, cap, (size_t)n, frame_len);
        } else {
            if (rc == 0 && act == UA_WS_DATA_FRAME) {
                if (ua_linebuf_append(&ws->msg, payload, len) < 0) {
                    PyErr_NoMemory();
                    return PYGEN_ERROR;
                }
            } else if (act == UA_WS_CONTROL_FRAME) {
                memcpy(control, payload, len);
            }
            ua_linebuf_consume(&r->buf, frame_len);
        }
        int end = rc < 0 ? rc : ua_ws_on_frame_end(&ws->conn, &h);
        if (end < 0) {
            if (fail(ws, -end) < 0)
                return PYGEN_ERROR;
            break;
        }
        if (end == UA_WS_MESSAGE_DONE) {
            if (deliver(ws, text) < 0)
                return PYGEN_ERROR;
            whole = 1;
        } else if (end == UA_WS_CONTROL_DONE) {
            if (on_control(ws, h.opcode, control, len) < 0)
                return PYGEN_ERROR;
            /* Answer (a pong) now, not after the next message; if another
             * operation is writing, it sends the answer when its frame is done. */
            if (!ws->sending && PyList_GET_SIZE(ws->outq))
                break;
        }
    }
    return PYGEN_RETURN;
}

/* ---- the op's steps ------------------------------------------------------------------- */

/* n bytes left the front of base.buf (returned, or dropped as a line over
 * the limit): the message being read is that much shorter. front_len must
 * never count past the buffer: a read takes that many bytes. */
static void payload_gone(WSConnObject *ws, size_t n)
{
    ws->front_len = n < ws->front_len ? ws->front_len - n : ua_linebuf_len(&ws->base.buf);
}

static PyObject *take_payload(WSConnObject *ws, size_t n)
{
    PyObject *b = ua_pybuf_take(&ws->base.buf, n);
    if (b)
        payload_gone(ws, n);
    return b;
}

/* Does the payload read so far answer the read op? 1 with *result set, 0
 * if not yet, -1 on error. Bytes leave base.buf only in an answer, so a
 * read timed out or cancelled part way loses none. */
static int answer_from_payload(WSOpObject *op, PyObject **result)
{
    WSConnObject *ws = op->ws;
    size_t have = ua_linebuf_len(&ws->base.buf), n;
    switch (op->kind) {
    case WS_RECV:
        if (!have) {
            if (!ws->got_empty)
                return 0;
            ws->got_empty = 0;
            *result = ws->front_text ? PyUnicode_FromStringAndSize("", 0) : PyBytes_FromStringAndSize("", 0);
            return *result ? 1 : -1;
        }
        n = ws->front_len ? ws->front_len : have;
        if (ws->front_text) {
            PyObject *b = take_payload(ws, n);
            *result = b ? PyUnicode_FromEncodedObject(b, "utf-8", "strict") : NULL;
            Py_XDECREF(b);
        } else {
            *result = take_payload(ws, n);
        }
        return *result ? 1 : -1;
    case WS_READ:
        ws->got_empty = 0;   /* b"" means the end: empty messages are skipped */
        if (!have)
            return 0;
        n = ws->front_len ? ws->front_len : have;
        if (op->n >= 0 && (size_t)op->n < n)
            n = (size_t)op->n;
        break;
    case WS_READLINE: {
        ws->got_empty = 0;
        ssize_t line = ua_reader_find_line(&ws->base);
        if (line == -2) {   /* the over-long line was dropped */
            payload_gone(ws, have - ua_linebuf_len(&ws->base.buf));
            return -1;
        }
        if (line < 0)
            return 0;
        n = (size_t)line;
        break;
    }
    default:   /* WS_READEXACTLY */
        ws->got_empty = 0;
        if (have < (size_t)op->n)
            return 0;
        n = (size_t)op->n;
        break;
    }
    *result = take_payload(ws, n);
    return *result ? 1 : -1;
}

static PySendResult ws_step(WSOpObject *op, PyObject **result)
{
    WSConnObject *ws = op->ws;
    PySendResult sr;
    *result = NULL;
    if (op->kind == WS_SEND || op->kind == WS_CLOSE) {
        if (!op->queued) {
            op->queued = 1;
            if (op->frame && queue_frame(ws, op->frame) < 0)
                return PYGEN_ERROR;
        }
        sr = flush(op, result);
        if (sr != PYGEN_RETURN)
            return sr;
        if (op->kind == WS_SEND && ws->sock_closed) {
            PyErr_SetString(PyExc_OSError, "the WebSocket connection is closed");
            return PYGEN_ERROR;
        }
        if (op->kind == WS_CLOSE && close_socket(ws) < 0)
            return PYGEN_ERROR;
        *result = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    for (;;) {
        /* Answers (pongs, the close) go out before more is read. */
        if (op->flushing || (!ws->sending && PyList_GET_SIZE(ws->outq))) {
            sr = flush(op, result);
            if (sr != PYGEN_RETURN)
                return sr;
        }
        int rc = answer_from_payload(op, result);
        if (rc)
            return rc < 0 ? PYGEN_ERROR : PYGEN_RETURN;
        if (ws->eof) {
            if (PyList_GET_SIZE(ws->outq) || ws->sending)
                continue;   /* the close answer first */
            if (close_socket(ws) < 0)
                return PYGEN_ERROR;
            if (op->kind == WS_RECV)
                *result = Py_NewRef(Py_None);
            else   /* b"", or the partial line or bytes */
                *result = take_payload(ws, ua_linebuf_len(&ws->base.buf));
            return *result ? PYGEN_RETURN : PYGEN_ERROR;
        }
        sr = read_message(op, result);
        if (sr != PYGEN_RETURN)
            return sr;
    }
}

static PySendResult wsop_send(WSOpObject *op, PyObject *value, PyObject **result)
{
    if (op->done) {
        *result = NULL;
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited WebSocket operation");
        return PYGEN_ERROR;
    }
    PySendResult sr = ws_step(op, result);
    if (sr != PYGEN_NEXT) {
        op->done = 1;
        if (op->flushing) {   /* failed mid-write: the connection is broken */
            PyObject *exc = ua_err_fetch();
            abandon(op);
            ua_err_restore(exc);
        }
    } else if (op->parked && *result != Py_False) {
        unpark(op);   /* it moved on (resumed early, or became the writer) */
    }
    return sr;
}

static PyObject *wsop_iternext(WSOpObject *op)
{
    PyObject *result;
    PySendResult sr = wsop_send(op, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *wsop_send_method(WSOpObject *op, PyObject *v)
{
    return ua_send_result(wsop_iternext(op));
}


static int wsop_traverse(WSOpObject *op, visitproc visit, void *arg)
{
    Py_VISIT(op->ws);
    Py_VISIT(op->frame);
    Py_VISIT(op->task);
    Py_VISIT(op->loop);
    return 0;
}

/* The op is given up (its task cancelled or gone) mid-way. */
static void abandon(WSOpObject *op)
{
    unpark(op);
    if (op->flushing && op->ws) {
        /* A frame cut short cannot be finished by anyone else: what follows
         * would land inside it. The connection is over. */
        WSConnObject *ws = op->ws;
        op->flushing = 0;
        Py_CLEAR(ws->sending);
        ws->eof = 1;
        ws->conn.close_sent = 1;
        PyObject *exc = ua_err_fetch();
        if (close_socket(ws) < 0 || wake_blocked(ws) < 0)
            PyErr_Clear();
        ua_err_restore(exc);
    }
}

static int wsop_clear(WSOpObject *op)
{
    abandon(op);
    Py_CLEAR(op->ws);
    Py_CLEAR(op->frame);
    Py_CLEAR(op->task);
    Py_CLEAR(op->loop);
    return 0;
}

static PyObject *wsop_throw(WSOpObject *op, PyObject *args)
{
    abandon(op);
    op->done = 1;
    return ua_raise_thrown(args);
}

static PyObject *wsop_close(WSOpObject *op, PyObject *unused)
{
    abandon(op);
    op->done = 1;
    Py_RETURN_NONE;
}

static void wsop_dealloc(WSOpObject *op)
{
    PyObject_GC_UnTrack(op);
    wsop_clear(op);
    PyObject_GC_Del(op);
}

static PyMethodDef wsop_methods[] = {
    {"send", (PyCFunction)wsop_send_method, METH_O, NULL},
    {"throw", (PyCFunction)wsop_throw, METH_VARARGS, NULL},
    {"close", (PyCFunction)wsop_close, METH_NOARGS, NULL},
    {NULL},
};

static PyAsyncMethods wsop_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)wsop_send,
};

PyTypeObject WSOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.websocket.server.WSOp",
    .tp_basicsize = sizeof(WSOpObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable WebSocket operation.",
    .tp_dealloc = (destructor)wsop_dealloc,
    .tp_traverse = (traverseproc)wsop_traverse,
    .tp_clear = (inquiry)wsop_clear,
    .tp_as_async = &wsop_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)wsop_iternext,
    .tp_methods = wsop_methods,
};

static PyObject *wsop_new(WSConnObject *ws, int kind, PyObject *frame)
{
    WSOpObject *op = PyObject_GC_New(WSOpObject, &WSOp_Type);
    if (!op)
        return NULL;
    op->ws = (WSConnObject *)Py_NewRef(ws);
    op->frame = frame;   /* stolen */
    op->n = -1;
    op->kind = (uint8_t)kind;
    op->queued = op->flushing = op->done = op->parked = 0;
    op->task = NULL;
    op->loop = NULL;
    op->link.node.next = op->link.node.prev = NULL;
    op->link.node.queue = NULL;
    op->budget = FILL_BUDGET;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

/* ---- WSConn ----------------------------------------------------------------------------- */

static PyObject *wsconn_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"reader", "writer", "max_message", NULL};
    PyObject *reader, *writer;
    unsigned long long max_message = 16ull << 20;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|K:WSConn", kwlist, &reader, &writer, &max_message))
        return NULL;
    if (!PyObject_TypeCheck(reader, &Reader_Type) || ((ReaderObject *)reader)->kind == IO_PY ||
        ((ReaderObject *)reader)->kind == IO_WS) {
        PyErr_SetString(PyExc_TypeError, "WSConn(): reader must be a StreamReader over a socket");
        return NULL;
    }
    WSConnObject *ws = (WSConnObject *)type->tp_alloc(type, 0);
    if (!ws)
        return NULL;
    ReaderObject *inner = (ReaderObject *)reader;
    ws->base.polls = Py_NewRef(inner->polls);
    ws->base.ios = Py_NewRef(reader);
    ua_pybuf_init(&ws->base.buf);
    ws->base.kind = IO_WS;
    ws->base.limit = inner->limit;
    ws->reader = Py_NewRef(reader);
    ws->writer = Py_NewRef(writer);
    ua_ws_limits lim = {.max_message = max_message, .masked = 1};
    ua_ws_conn_init(&ws->conn, &lim);
    ua_pybuf_init(&ws->msg);
    ws->close_code = UA_WS_STATUS_ABNORMAL;
    ws->outq = PyList_New(0);
    ws->blocked = PyList_New(0);
    if (!ws->outq || !ws->blocked) {
        Py_DECREF(ws);
        return NULL;
    }
    return (PyObject *)ws;
}

static PyObject *wsconn_read(WSConnObject *ws, PyObject *args)
{
    Py_ssize_t n = -1;
    if (!PyArg_ParseTuple(args, "|n:read", &n))
        return NULL;
    WSOpObject *op = (WSOpObject *)wsop_new(ws, WS_READ, NULL);
    if (op)
        op->n = n < 0 ? -1 : n;
    return (PyObject *)op;
}

static PyObject *wsconn_recv(WSConnObject *ws, PyObject *unused)
{
    return wsop_new(ws, WS_RECV, NULL);
}

static PyObject *wsconn_readline(WSConnObject *ws, PyObject *unused)
{
    return wsop_new(ws, WS_READLINE, NULL);
}

static PyObject *wsconn_readexactly(WSConnObject *ws, PyObject *arg)
{
    Py_ssize_t n;
    if (ua_count_arg(arg, 0, "readexactly", &n) < 0)
        return NULL;
    WSOpObject *op = (WSOpObject *)wsop_new(ws, WS_READEXACTLY, NULL);
    if (op)
        op->n = n;
    return (PyObject *)op;
}

/* A frame for data: str is text; bytes-like is binary if asked, else text
 * when it is valid UTF-8 (uasyncio 2.0 sent text) and binary otherwise. */
static PyObject *data_frame(PyObject *data, int binary)
{
    if (PyUnicode_Check(data)) {
        if (binary == 1) {
            PyErr_SetString(PyExc_TypeError, "binary=True needs bytes, not str");
            return NULL;
        }
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(data, &len);
        return s ? build_frame(UA_WS_TEXT, s, (size_t)len) : NULL;
    }
    Py_buffer v;
    if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "WebSocket data must be str or bytes-like, not %.100s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    int opcode = UA_WS_BINARY;
    if (binary != 1) {
        ua_utf8 st;
        ua_utf8_init(&st);
        int valid = ua_utf8_feed(&st, v.buf, (size_t)v.len) == 0 && ua_utf8_complete(&st);
        if (valid)
            opcode = UA_WS_TEXT;
        else if (binary == 0) {
            PyBuffer_Release(&v);
            PyErr_SetString(PyExc_ValueError, "binary=False: the data is not valid UTF-8");
            return NULL;
        }
    }
    PyObject *f = build_frame(opcode, v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return f;
}

static PyObject *wsconn_awrite(WSConnObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "binary", NULL};
    PyObject *data, *binary_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:awrite", kwlist, &data, &binary_obj))
        return NULL;
    int binary = binary_obj == Py_None ? -1 : PyObject_IsTrue(binary_obj);
    if (binary_obj != Py_None && binary < 0)
        return NULL;
    if (ws->conn.close_sent) {
        PyErr_SetString(PyExc_OSError, "the WebSocket connection is closing");
        return NULL;
    }
    PyObject *frame = data_frame(data, binary);
    return frame ? wsop_new(ws, WS_SEND, frame) : NULL;
}

/* send(msg): str as text, bytes as binary. */
static PyObject *wsconn_send(WSConnObject *ws, PyObject *data)
{
    if (ws->conn.close_sent) {
        PyErr_SetString(PyExc_OSError, "the WebSocket connection is closing");
        return NULL;
    }
    PyObject *frame = data_frame(data, PyUnicode_Check(data) ? -1 : 1);
    return frame ? wsop_new(ws, WS_SEND, frame) : NULL;
}

static PyObject *wsconn_aclose(WSConnObject *ws, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"code", "reason", NULL};
    int code = UA_WS_STATUS_NORMAL;
    const char *reason = "";
    Py_ssize_t reason_len = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|is#:aclose", kwlist, &code, &reason, &reason_len))
        return NULL;
    if (!ua_ws_close_code_valid(code)) {
        PyErr_Format(PyExc_ValueError, "aclose(): %d is not a close status that may be sent", code);
        return NULL;
    }
    if (!ws->sock_closed && ua_io_check_closing(ws->base.polls) < 0)   /* before anything changes */
        return NULL;
    ws->eof = 1;
    if (queue_close(ws, code, reason, (size_t)reason_len) < 0)
        return NULL;
    return wsop_new(ws, WS_CLOSE, NULL);
}

static PyObject *wsconn_repr(WSConnObject *ws)
{
    return PyUnicode_FromFormat("<WSConn %R%s>", ws->reader, ws->eof ? " closed" : "");
}

static int wsconn_traverse(WSConnObject *ws, visitproc visit, void *arg)
{
    Py_VISIT(ws->base.polls);
    Py_VISIT(ws->base.ios);
    Py_VISIT(ws->reader);
    Py_VISIT(ws->writer);
    Py_VISIT(ws->outq);
    Py_VISIT(ws->sending);
    Py_VISIT(ws->blocked);
    return 0;
}

static int wsconn_clear(WSConnObject *ws)
{
    Py_CLEAR(ws->base.polls);
    Py_CLEAR(ws->base.ios);
    Py_CLEAR(ws->reader);
    Py_CLEAR(ws->writer);
    Py_CLEAR(ws->outq);
    Py_CLEAR(ws->sending);
    Py_CLEAR(ws->blocked);
    return 0;
}

static void wsconn_dealloc(WSConnObject *ws)
{
    PyObject_GC_UnTrack(ws);
    wsconn_clear(ws);
    ua_linebuf_free(&ws->msg);
    ua_linebuf_free(&ws->base.buf);
    Py_TYPE(ws)->tp_free((PyObject *)ws);
}

static PyMethodDef wsconn_methods[] = {
    {"read", (PyCFunction)wsconn_read, METH_VARARGS,
     "read(n=-1): awaitable; the next message's bytes (at most n of them; the rest of a message\n"
     "read in part comes first), b'' once closed."},
    {"readline", (PyCFunction)wsconn_readline, METH_NOARGS,
     "readline(): awaitable; payload bytes up to and with the next b'\\n', across messages; at the\n"
     "end the partial line, then b''. Over the limit: LimitOverrunError."},
    {"readexactly", (PyCFunction)wsconn_readexactly, METH_O,
     "readexactly(n): awaitable; the next n payload bytes, across messages (fewer at the end)."},
    {"recv", (PyCFunction)wsconn_recv, METH_NOARGS,
     "recv(): awaitable; the next message, str (text) or bytes (binary); None once closed."},
    {"awrite", (PyCFunction)(void (*)(void))wsconn_awrite, METH_VARARGS | METH_KEYWORDS,
     "awrite(data, binary=None): awaitable; send one message."},
    {"send", (PyCFunction)wsconn_send, METH_O, "send(msg): awaitable; str as text, bytes as binary."},
    {"aclose", (PyCFunction)(void (*)(void))wsconn_aclose, METH_VARARGS | METH_KEYWORDS,
     "aclose(code=1000, reason=''): awaitable; the close handshake, then close the socket."},
    {NULL},
};

static PyMemberDef wsconn_members[] = {
    {"close_code", T_INT, offsetof(WSConnObject, close_code), READONLY,
     "the close status (the peer's, or ours after a protocol error); 1006 if none yet"},
    {NULL},
};

PyTypeObject WSConn_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.websocket.server.WSConn",
    .tp_basicsize = sizeof(WSConnObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "WSConn(reader, writer, max_message=16 MiB): a server-side WebSocket on a stream; a\n"
              "StreamReader over the messages' payloads (limit: the reader's).",
    .tp_new = wsconn_new,
    .tp_dealloc = (destructor)wsconn_dealloc,
    .tp_traverse = (traverseproc)wsconn_traverse,
    .tp_clear = (inquiry)wsconn_clear,
    .tp_repr = (reprfunc)wsconn_repr,
    .tp_methods = wsconn_methods,
    .tp_members = wsconn_members,
};

static PyObject *mod_ws_accept_key(PyObject *m, PyObject *key)
{
    Py_buffer v;
    if (PyObject_GetBuffer(key, &v, PyBUF_SIMPLE) < 0)
        return NULL;
    char out[UA_WS_ACCEPT_SIZE];
    ua_ws_accept_key(v.buf, (size_t)v.len, out);
    PyBuffer_Release(&v);
    return PyBytes_FromStringAndSize(out, UA_WS_ACCEPT_SIZE - 1);
}

static PyMethodDef ws_module_methods[] = {
    {"ws_accept_key", mod_ws_accept_key, METH_O, "Sec-WebSocket-Accept for a Sec-WebSocket-Key (bytes)."},
    {NULL},
};

int ua_ws_ready(PyObject *module)
{
    WSConn_Type.tp_base = &Reader_Type;
    if (PyType_Ready(&WSOp_Type) < 0 || PyType_Ready(&WSConn_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "WSConn", (PyObject *)&WSConn_Type) < 0)
        return -1;
    return PyModule_AddFunctions(module, ws_module_methods);
}
