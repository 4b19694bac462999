/* The exception handler of every loop: set_exception_handler() and the
 * others, and what a task's or a callback's exception that escaped is
 * given to (loop.c: with a handler set, or on a loop that reports errors;
 * uasyncio.v3's Task: one nobody retrieved). The default handler prints the
 * message, the task (with its coroutine) and the traceback, as CPython's. */
#include "internal.h"

static PyObject *str_message, *str_exception, *str_future;

/* context[key] into *value, held (or NULL if missing): -1 on error. */
static int dict_get_ref(PyObject *context, PyObject *key, PyObject **value)
{
    *value = Py_XNewRef(PyDict_GetItemWithError(context, key));
    return *value || !PyErr_Occurred() ? 0 : -1;
}

/* Held, not borrowed: writing to sys.stderr runs its code, which may
 * replace sys.stderr or change the context dict. */
static int write_context(PyObject *context, PyObject *err)
{
    PyObject *msg, *fut, *exc;
    if (dict_get_ref(context, str_message, &msg) < 0)
        return -1;
    int rc = msg && (PyFile_WriteObject(msg, err, Py_PRINT_RAW) < 0 || PyFile_WriteString("\n", err) < 0)
                 ? -1 : 0;
    Py_XDECREF(msg);
    if (rc < 0 || dict_get_ref(context, str_future, &fut) < 0)
        return -1;
    if (fut && fut != Py_None) {
        /* An owner (a v3 Task), or what else raised (a callback, a 2.0 coroutine) */
        PyObject *coro = ua_loop_coro_of(fut);
        PyObject *line = coro ? PyUnicode_FromFormat("future: %R coro= %R\n", fut, coro)
                              : PyUnicode_FromFormat("future: %R\n", fut);
        rc = line ? PyFile_WriteObject(line, err, Py_PRINT_RAW) : -1;
        Py_XDECREF(line);
    }
    Py_XDECREF(fut);
    if (rc < 0 || dict_get_ref(context, str_exception, &exc) < 0)
        return -1;
    if (exc && PyExceptionInstance_Check(exc)) {
        /* The interpreter's own printer (to sys.stderr, as err is): the
         * traceback and the chained exceptions, with no module to import. */
        PyObject *tb = PyException_GetTraceback(exc);
        PyErr_Display((PyObject *)Py_TYPE(exc), exc, tb);
        Py_XDECREF(tb);
    }
    Py_XDECREF(exc);
    return 0;
}

static int default_handler(PyObject *context)
{
    PyObject *err = PySys_GetObject("stderr");   /* borrowed */
    if (!err || err == Py_None)
        return 0;
    Py_INCREF(err);
    int rc = write_context(context, err);
    Py_DECREF(err);
    return rc;
}

static int call_handler(LoopObject *loop, PyObject *context)
{
    if (!loop->exc_handler)
        return default_handler(context);
    PyObject *h = Py_NewRef(loop->exc_handler);
    PyObject *r = PyObject_CallFunctionObjArgs(h, (PyObject *)loop, context, NULL);
    Py_DECREF(h);
    if (!r)
        return -1;
    Py_DECREF(r);
    return 0;
}

int ua_loop_handle_exception(LoopObject *loop, const char *message, PyObject *exc, PyObject *future)
{
    PyObject *context = Py_BuildValue("{s:s,s:O,s:O}", "message", message, "exception", exc,
                                      "future", future ? future : Py_None);
    if (!context)
        return -1;
    int rc = call_handler(loop, context);
    Py_DECREF(context);
    return rc;
}

static PyObject *loop_set_exception_handler(LoopObject *self, PyObject *handler)
{
    if (handler != Py_None && !PyCallable_Check(handler)) {
        PyErr_Format(PyExc_TypeError, "set_exception_handler() expects a callable or None, not %.100s",
                     Py_TYPE(handler)->tp_name);
        return NULL;
    }
    Py_XSETREF(self->exc_handler, handler == Py_None ? NULL : Py_NewRef(handler));
    Py_RETURN_NONE;
}

static PyObject *loop_get_exception_handler(LoopObject *self, PyObject *unused)
{
    return Py_NewRef(self->exc_handler ? self->exc_handler : Py_None);
}

static PyObject *context_arg(PyObject *const *args, Py_ssize_t nargs, const char *name)
{
    /* (context) as in CPython, or (loop, context) as MicroPython's static method */
    PyObject *context = nargs == 1 ? args[0] : nargs == 2 ? args[1] : NULL;
    if (!context || !PyDict_Check(context)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a context dict", name);
        return NULL;
    }
    return context;
}

static PyObject *loop_default_exception_handler(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *context = context_arg(args, nargs, "default_exception_handler");
    if (!context || default_handler(context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *loop_call_exception_handler(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *context = context_arg(args, nargs, "call_exception_handler");
    if (!context || call_handler(self, context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* EventLoop's (ua_loop_handler_ready), so every loop of both APIs has them. */
static PyMethodDef handler_methods[] = {
    {"set_exception_handler", (PyCFunction)loop_set_exception_handler, METH_O,
     "set_exception_handler(handler): handler(loop, context) gets the exceptions that escape tasks."},
    {"get_exception_handler", (PyCFunction)loop_get_exception_handler, METH_NOARGS,
     "The handler set, or None."},
    {"default_exception_handler", (PyCFunction)(void (*)(void))loop_default_exception_handler,
     METH_FASTCALL, "default_exception_handler(context): print the message, the task and the traceback."},
    {"call_exception_handler", (PyCFunction)(void (*)(void))loop_call_exception_handler,
     METH_FASTCALL, "call_exception_handler(context): call the handler set, or the default one."},
    {NULL},
};

int ua_loop_handler_ready(PyObject *module)
{
    if (!(str_message = PyUnicode_InternFromString("message")) ||
        !(str_exception = PyUnicode_InternFromString("exception")) ||
        !(str_future = PyUnicode_InternFromString("future")))
        return -1;
    for (PyMethodDef *d = handler_methods; d->ml_name; d++) {
        PyObject *descr = PyDescr_NewMethod(&Loop_Type, d);
        if (!descr)
            return -1;
        int rc = PyDict_SetItemString(Loop_Type.tp_dict, d->ml_name, descr);
        Py_DECREF(descr);
        if (rc < 0)
            return -1;
    }
    PyType_Modified(&Loop_Type);
    return 0;
}
