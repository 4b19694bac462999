/* uasyncio.udp: awaitable recv/recvfrom/sendto/close on a non-blocking
 * datagram socket. Each call is tried at once; only when the socket would
 * block does the task wait (IORead/IOWrite) and try again. */
#include "io.h"

#include <sys/socket.h>

enum { U_RECV, U_RECVFROM, U_SENDTO, U_CLOSE, U_SEND };

typedef struct {
    PyObject_HEAD
    PyObject *sock;
    PyObject *args;     /* the method's arguments */
    uint8_t kind;
    uint8_t done;
} UdpOpObject;

extern PyTypeObject UdpOp_Type;
static const char *const method[] = {"recv", "recvfrom", "sendto", "close", "send"};

static PySendResult udp_send(UdpOpObject *op, PyObject *value, PyObject **result)
{
    *result = NULL;
    if (op->done) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited operation");
        return PYGEN_ERROR;
    }
    if (op->kind == U_CLOSE) {
        if (ua_io_check_closing(op->sock) < 0)   /* a task of a loop in another thread waits on it */
            return PYGEN_ERROR;
        op->done = 1;
        LoopObject *loop = ua_running_loop_get();
        if (loop && (ua_loop_io_done(loop, op->sock, UA_POLL_READ) < 0 ||
                     ua_loop_io_done(loop, op->sock, UA_POLL_WRITE) < 0))
            return PYGEN_ERROR;
        PyObject *r = PyObject_CallMethod(op->sock, "close", NULL);
        if (!r)
            return PYGEN_ERROR;
        *result = r;
        return PYGEN_RETURN;
    }
    PyObject *meth = PyObject_GetAttrString(op->sock, method[op->kind]);
    PyObject *r = meth ? PyObject_Call(meth, op->args, NULL) : NULL;
    Py_XDECREF(meth);
    if (r) {
        op->done = 1;
        if (op->kind == U_SENDTO || op->kind == U_SEND) {
            Py_DECREF(r);
            r = Py_NewRef(Py_None);
        }
        *result = r;
        return PYGEN_RETURN;
    }
    if (!PyErr_ExceptionMatches(PyExc_BlockingIOError)) {
        op->done = 1;
        return PYGEN_ERROR;
    }
    PyErr_Clear();
    *result = PyObject_CallOneArg((PyObject *)(op->kind >= U_SENDTO && op->kind != U_CLOSE ? &IOWrite_Type : &IORead_Type), op->sock);
    return *result ? PYGEN_NEXT : PYGEN_ERROR;
}

static PyObject *udp_iternext(UdpOpObject *op)
{
    PyObject *result;
    PySendResult sr = udp_send(op, Py_None, &result);
    return ua_iternext_result(sr, result);
}

static PyObject *udp_send_method(UdpOpObject *op, PyObject *v)
{
    return ua_send_result(udp_iternext(op));
}


static int udp_traverse(UdpOpObject *op, visitproc visit, void *arg)
{
    Py_VISIT(op->sock);
    Py_VISIT(op->args);
    return 0;
}

static int udp_clear(UdpOpObject *op)
{
    Py_CLEAR(op->sock);
    Py_CLEAR(op->args);
    return 0;
}

static void udp_dealloc(UdpOpObject *op)
{
    PyObject_GC_UnTrack(op);
    udp_clear(op);
    PyObject_GC_Del(op);
}

static PyMethodDef udp_op_methods[] = {
    {"send", (PyCFunction)udp_send_method, METH_O, NULL},
    {NULL},
};

static PyAsyncMethods udp_async = {
    .am_await = ua_self_await,
    .am_send = (sendfunc)udp_send,
};

PyTypeObject UdpOp_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.udp.UdpOp",
    .tp_basicsize = sizeof(UdpOpObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "An awaitable datagram operation.",
    .tp_dealloc = (destructor)udp_dealloc,
    .tp_traverse = (traverseproc)udp_traverse,
    .tp_clear = (inquiry)udp_clear,
    .tp_as_async = &udp_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)udp_iternext,
    .tp_methods = udp_op_methods,
};

static PyObject *udp_op(int kind, PyObject *sock, PyObject *args)
{
    if (!args)
        return NULL;
    if (!PyObject_HasAttrString(sock, "fileno")) {
        PyErr_Format(PyExc_TypeError, "udp: expected a socket, not %.100s", Py_TYPE(sock)->tp_name);
        Py_DECREF(args);
        return NULL;
    }
    UdpOpObject *op = PyObject_GC_New(UdpOpObject, &UdpOp_Type);
    if (!op) {
        Py_DECREF(args);
        return NULL;
    }
    op->sock = Py_NewRef(sock);
    op->args = args;    /* stolen */
    op->kind = (uint8_t)kind;
    op->done = 0;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

static PyObject *udp_recv(PyObject *m, PyObject *args)
{
    PyObject *s;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On:recv", &s, &n))
        return NULL;
    return udp_op(U_RECV, s, Py_BuildValue("(n)", n));
}

static PyObject *udp_recvfrom(PyObject *m, PyObject *args)
{
    PyObject *s;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "On:recvfrom", &s, &n))
        return NULL;
    return udp_op(U_RECVFROM, s, Py_BuildValue("(n)", n));
}

static PyObject *udp_sendto(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"s", "buf", "addr", NULL};
    PyObject *s, *buf, *addr = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:sendto", kwlist, &s, &buf, &addr))
        return NULL;
    /* addr None: a connected socket, as sock.send(buf) */
    PyObject *a = addr == Py_None ? Py_BuildValue("(O)", buf) : Py_BuildValue("(OO)", buf, addr);
    return udp_op(addr == Py_None ? U_SEND : U_SENDTO, s, a);
}

static PyObject *udp_close(PyObject *m, PyObject *s)
{
    return udp_op(U_CLOSE, s, PyTuple_New(0));
}

static PyObject *udp_socket(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"af", NULL};
    int af = AF_INET;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:socket", kwlist, &af))
        return NULL;
    PyObject *socket_mod = PyImport_ImportModule("socket");
    PyObject *s = socket_mod ? PyObject_CallMethod(socket_mod, "socket", "ii", af, SOCK_DGRAM) : NULL;
    Py_XDECREF(socket_mod);
    PyObject *r = s ? PyObject_CallMethod(s, "setblocking", "O", Py_False) : NULL;
    if (!r) {
        Py_XDECREF(s);
        return NULL;
    }
    Py_DECREF(r);
    return s;
}

static PyMethodDef udp_methods[] = {
    {"udp_socket", (PyCFunction)(void (*)(void))udp_socket, METH_VARARGS | METH_KEYWORDS,
     "socket(af=AF_INET): a non-blocking datagram socket."},
    {"udp_recv", udp_recv, METH_VARARGS, "recv(s, n): awaitable; one datagram's bytes."},
    {"udp_recvfrom", udp_recvfrom, METH_VARARGS, "recvfrom(s, n): awaitable; (bytes, address)."},
    {"udp_sendto", (PyCFunction)(void (*)(void))udp_sendto, METH_VARARGS | METH_KEYWORDS,
     "sendto(s, buf, addr=None): awaitable; send one datagram."},
    {"udp_close", udp_close, METH_O, "close(s): awaitable; unregister and close."},
    {NULL},
};

int ua_udp_ready(PyObject *module)
{
    if (PyType_Ready(&UdpOp_Type) < 0)
        return -1;
    return PyModule_AddFunctions(module, udp_methods);
}
