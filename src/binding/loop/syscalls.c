/* The values a task yields to ask the loop for something: SysCall and its
 * one-argument family (StopLoop, IORead, IOWrite, IOReadDone, IOWriteDone),
 * and SleepMs, the awaitable behind sleep() and sleep_ms(). */
#include "loop.h"

/* ---- SysCall, SysCall1 and the I/O syscalls -----------------------------
 * Short-lived and not GC-tracked (a Python subclass with a __dict__ is). */

static int syscall_init(SysCallObject *self, PyObject *args, PyObject *kwds)
{
    if (kwds && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "SysCall() takes no keyword arguments");
        return -1;
    }
    Py_INCREF(args);
    Py_XSETREF(self->arg, args);
    return 0;
}

static int syscall1_init(SysCallObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"arg", NULL};
    PyObject *arg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &arg))
        return -1;
    Py_INCREF(arg);
    Py_XSETREF(self->arg, arg);
    return 0;
}

static void syscall_dealloc(SysCallObject *self)
{
    Py_CLEAR(self->arg);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *syscall_repr(SysCallObject *self)
{
    return PyUnicode_FromFormat("%s(%R)", ua_type_name(Py_TYPE(self)),
                                self->arg ? self->arg : Py_None);
}

static PyObject *syscall_handle(PyObject *self, PyObject *unused)
{
    PyErr_SetString(PyExc_NotImplementedError, "SysCall.handle");
    return NULL;
}

static PyMethodDef syscall_methods[] = {
    {"handle", syscall_handle, METH_NOARGS, "Not implemented: the loop reads what a syscall asks for itself."},
    {NULL},
};

static PyMemberDef syscall_members[] = {
    {"args", T_OBJECT, offsetof(SysCallObject, arg), 0, "the arguments"},
    {NULL},
};

static PyMemberDef syscall1_members[] = {
    {"arg", T_OBJECT, offsetof(SysCallObject, arg), 0, "the argument"},
    {NULL},
};

PyTypeObject SysCall_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.core.SysCall",
    .tp_basicsize = sizeof(SysCallObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A request a task yields to the event loop.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)syscall_init,
    .tp_dealloc = (destructor)syscall_dealloc,
    .tp_repr = (reprfunc)syscall_repr,
    .tp_methods = syscall_methods,
    .tp_members = syscall_members,
};

#define SYSCALL1_TYPE(cname, pyname, doc, base, size)                        \
    PyTypeObject cname = {                                                   \
        PyVarObject_HEAD_INIT(NULL, 0)                                       \
        .tp_name = "uasyncio.core." pyname,                                  \
        .tp_basicsize = size,                                                \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, \
        .tp_doc = doc,                                                       \
        .tp_base = base,                                                     \
        .tp_init = (initproc)syscall1_init,                                  \
        .tp_dealloc = (destructor)syscall_dealloc,                           \
        .tp_members = syscall1_members,                                      \
    }

SYSCALL1_TYPE(SysCall1_Type, "SysCall1", "A syscall with one argument.", &SysCall_Type, sizeof(SysCallObject));
SYSCALL1_TYPE(StopLoop_Type, "StopLoop", "Yielded: run_forever() returns arg.", &SysCall1_Type, sizeof(SysCallObject));
SYSCALL1_TYPE(IORead_Type, "IORead", "Yielded: resume when arg is readable.", &SysCall1_Type, sizeof(IOWaitObject));
SYSCALL1_TYPE(IOWrite_Type, "IOWrite", "Yielded: resume when arg is writable.", &SysCall1_Type, sizeof(IOWaitObject));
SYSCALL1_TYPE(IOReadDone_Type, "IOReadDone", "Yielded: stop polling arg for reading.", &SysCall1_Type, sizeof(SysCallObject));
SYSCALL1_TYPE(IOWriteDone_Type, "IOWriteDone", "Yielded: stop polling arg for writing.", &SysCall1_Type, sizeof(SysCallObject));

/* A syscall of type (SysCall1 or a C subclass) holding arg, without the
 * generic call machinery: the stream fast path yields these per wait. */
PyObject *ua_syscall_new(PyTypeObject *type, PyObject *arg)
{
    SysCallObject *op = PyObject_New(SysCallObject, type);
    if (!op)
        return NULL;
    op->arg = Py_NewRef(arg);
    /* An IORead or IOWrite's owner: none */
    memset(op + 1, 0, (size_t)type->tp_basicsize - sizeof(SysCallObject));
    return (PyObject *)op;
}

PyObject *ua_syscall_owned(PyTypeObject *type, PyObject *arg, uint64_t owner)
{
    PyObject *op = ua_syscall_new(type, arg);
    if (op)
        ((IOWaitObject *)op)->owner = owner;
    return op;
}

uint64_t ua_stream_id(void)
{
    static uint64_t last;   /* the GIL serialises callers */
    return ++last;
}

/* ---- SleepMs ------------------------------------------------------------
 * sleep_ms(n) returns one of these: awaited, it yields itself once (the loop
 * reads ms), and on the next resumption it is done. Each call gets its own
 * object, so two pending sleeps never clobber each other; a free list makes
 * that cost no allocation in steady state. Not GC-tracked: it holds no
 * references. */

#define SLEEP_FREELIST_MAX 256
static SleepMsObject *sleep_freelist[SLEEP_FREELIST_MAX];
static int sleep_nfree;

PyObject *ua_sleep_ms_new(int32_t ms)
{
    SleepMsObject *op;
    if (sleep_nfree) {
        op = sleep_freelist[--sleep_nfree];
        PyObject_Init((PyObject *)op, &SleepMs_Type);
    } else {
        op = PyObject_New(SleepMsObject, &SleepMs_Type);
        if (!op)
            return NULL;
    }
    op->base.arg = NULL;
    op->ms = ms;
    op->yielded = 0;
    return (PyObject *)op;
}

static PyObject *sleepms_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ms", NULL};
    PyObject *ms_obj = NULL;
    int32_t ms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:SleepMs", kwlist, &ms_obj))
        return NULL;
    if (ms_obj && ua_delay_from_ms(ms_obj, &ms, "SleepMs") < 0)
        return NULL;
    return ua_sleep_ms_new(ms);
}

static void sleepms_dealloc(SleepMsObject *op)
{
    if (sleep_nfree < SLEEP_FREELIST_MAX)
        sleep_freelist[sleep_nfree++] = op;
    else
        PyObject_Free(op);
}

static PyObject *sleepms_next(SleepMsObject *op)
{
    if (op->yielded)
        return NULL;    /* done: StopIteration with no value, fast */
    op->yielded = 1;
    Py_INCREF(op);
    return (PyObject *)op;
}

static PyObject *sleepms_send(SleepMsObject *op, PyObject *value)
{
    return ua_send_result(sleepms_next(op));
}


static PyObject *sleepms_get_arg(SleepMsObject *op, void *closure)
{
    return PyLong_FromLong(op->ms);
}

static PyObject *sleepms_repr(SleepMsObject *op)
{
    return PyUnicode_FromFormat("<SleepMs %d ms>", (int)op->ms);
}

/* throw(): raised where it was awaited, as from a generator; so a sleep
 * can itself be run as a task and cancelled. */
static PyObject *sleepms_throw(SleepMsObject *op, PyObject *args)
{
    op->yielded = 1;
    return ua_raise_thrown(args);
}

static PyMethodDef sleepms_methods[] = {
    {"send", (PyCFunction)sleepms_send, METH_O, "send(v): the coroutine protocol; the first step yields the sleep to the loop."},
    {"throw", (PyCFunction)sleepms_throw, METH_VARARGS, "throw(exc): raised where the sleep is awaited."},
    {NULL},
};

static PyGetSetDef sleepms_getset[] = {
    {"arg", (getter)sleepms_get_arg, NULL, "the delay in ms", NULL},
    {NULL},
};

static PyAsyncMethods sleepms_async = {
    .am_await = ua_self_await,
};

PyTypeObject SleepMs_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "uasyncio.core.SleepMs",
    .tp_basicsize = sizeof(SleepMsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "SleepMs(ms=0): awaitable that sleeps ms milliseconds (what sleep_ms() returns).",
    .tp_base = &SysCall1_Type,
    .tp_new = sleepms_new,
    .tp_init = NULL,
    .tp_dealloc = (destructor)sleepms_dealloc,
    .tp_repr = (reprfunc)sleepms_repr,
    .tp_as_async = &sleepms_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)sleepms_next,
    .tp_methods = sleepms_methods,
    .tp_getset = sleepms_getset,
};

int ua_syscalls_ready(PyObject *module)
{
    PyTypeObject *types[] = {&SysCall_Type, &SysCall1_Type, &StopLoop_Type, &IORead_Type,
                             &IOWrite_Type, &IOReadDone_Type, &IOWriteDone_Type, &SleepMs_Type};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0)
            return -1;
        if (PyModule_AddObjectRef(module, ua_type_name(types[i]), (PyObject *)types[i]) < 0)
            return -1;
    }
    return 0;
}
