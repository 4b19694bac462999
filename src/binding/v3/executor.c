/* Threads for uasyncio.v3, as CPython's asyncio has them: wrap_future(),
 * Loop.run_in_executor(), Loop.set_default_executor(), to_thread().
 *
 * No Future class: a concurrent.futures.Future is awaited through a Wait
 * (kind W_FUTURE). Its task parks; the future's done callback, which runs
 * in the worker thread, wakes the task through the loop's
 * call_soon_threadsafe() (its wake-up pipe wakes a loop blocked in epoll at
 * once). wrap_future() and run_in_executor() return a Task running that
 * Wait, which stands for CPython's asyncio.Future: awaitable by several
 * tasks, done(), result(), cancel(), callbacks, usable in gather() and
 * wait(). Cancelling it (or a task awaiting it: cancel goes down the chain)
 * cancels the concurrent future, which stops it only if it has not started,
 * as in CPython. to_thread() returns the Wait itself, so that it is a
 * coroutine-like object create_task() and gather() accept, as CPython's
 * coroutine is; it submits when first run, in a copy of the context.
 *
 * The default executor is a concurrent.futures.ThreadPoolExecutor made on
 * first use and shut down (without waiting) by Loop.close(). */
#include "internal.h"

static PyObject *ThreadPoolExecutor, *ConcurrentFuture;   /* imported on first use */
static PyObject *base_close;                             /* EventLoop.close */

static int import_futures(void)
{
    if (ConcurrentFuture)
        return 0;
    PyObject *m = PyImport_ImportModule("concurrent.futures");
    if (!m)
        return -1;
    ThreadPoolExecutor = PyObject_GetAttrString(m, "ThreadPoolExecutor");
    ConcurrentFuture = ThreadPoolExecutor ? PyObject_GetAttrString(m, "Future") : NULL;
    Py_DECREF(m);
    if (!ConcurrentFuture) {
        Py_CLEAR(ThreadPoolExecutor);
        return -1;
    }
    return 0;
}

/* ---- awaiting a concurrent future ---------------------------------------------- */

/* The Wait's callback, bound to it (w->value holds it while it waits):
 * cb(future) comes from the future, in whatever thread ended it, and asks
 * the loop's thread for cb(), which hands the Wait over to its task. */
static PyObject *future_cb(PyObject *self, PyObject *args)
{
    WaitObject *w = (WaitObject *)self;
    TaskObject *t = w->task;
    if (PyTuple_GET_SIZE(args)) {
        /* Any thread, holding the GIL. A closed loop has nothing left to wake. */
        if (t && t->loop && w->value && ua_loop_call_soon_threadsafe(t->loop, w->value, NULL) < 0)
            PyErr_Clear();
    } else if (t && w->state == 1 && ua_wait_hand(w) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef future_cb_def = {"_wake", future_cb, METH_VARARGS, NULL};

/* The future's outcome ends the await: its result, its exception, or
 * CancelledError if it was cancelled. The Wait lets go of it (the future's
 * callback list still holds the Wait: no cycle is left). */
static PyObject *future_outcome(WaitObject *w)
{
    PyObject *fut = w->target;
    w->target = NULL;
    Py_CLEAR(w->value);
    w->state = 0xff;
    PyObject *r = PyObject_CallMethod(fut, "cancelled", NULL);
    int cancelled = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (cancelled) {
        if (cancelled > 0)
            PyErr_SetNone(ua_v3_CancelledError);
        Py_DECREF(fut);
        return NULL;
    }
    PyObject *exc = PyObject_CallMethod(fut, "exception", NULL);
    if (exc && exc != Py_None) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_CLEAR(exc);
    } else if (exc) {
        Py_DECREF(exc);
        r = PyObject_CallMethod(fut, "result", NULL);
        Py_DECREF(fut);
        return ua_wait_done(r);
    }
    Py_DECREF(fut);
    return NULL;
}

/* to_thread()'s Wait submits when first run: value holds (func, args, kwargs). */
static int submit_to_thread(WaitObject *w, TaskObject *cur)
{
    PyObject *call = w->value, *func = PyTuple_GET_ITEM(call, 0);
    PyObject *fargs = PyTuple_GET_ITEM(call, 1), *kwargs = PyTuple_GET_ITEM(call, 2);
    PyObject *executor = ua_v3_default_executor(cur->loop);
    if (!executor)
        return -1;
    /* fn runs in a copy of the running task's context, as CPython's. */
    PyObject *ctx = PyContext_CopyCurrent();
    PyObject *run = ctx ? PyObject_GetAttrString(ctx, "run") : NULL;
    Py_XDECREF(ctx);
    PyObject *submit = run ? PyObject_GetAttrString(executor, "submit") : NULL;
    Py_DECREF(executor);
    PyObject *head = submit ? PyTuple_Pack(2, run, func) : NULL;
    PyObject *all = head ? PySequence_Concat(head, fargs) : NULL;
    PyObject *fut = all ? PyObject_Call(submit, all, kwargs) : NULL;
    Py_XDECREF(all);
    Py_XDECREF(head);
    Py_XDECREF(submit);
    Py_XDECREF(run);
    if (!fut)
        return -1;
    Py_CLEAR(w->value);
    w->target = fut;
    return 0;
}

static PyObject *future_next(WaitObject *w)
{
    if (w->state == 0xff) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited wait");
        return NULL;
    }
    TaskObject *cur = ua_v3_current_or_error("this awaitable");
    if (!cur)
        return NULL;
    if (!w->target && submit_to_thread(w, cur) < 0) {
        w->state = 0xff;
        return NULL;
    }
    PyObject *r = PyObject_CallMethod(w->target, "done", NULL);
    int done = r ? PyObject_IsTrue(r) : -1;
    Py_XDECREF(r);
    if (done < 0)
        return NULL;
    if (done)
        return future_outcome(w);
    PyObject *parked = ua_wait_park(w, NULL);
    if (!parked || w->state == 1)
        return parked;   /* woken before its end: wait on */
    w->state = 1;
    PyObject *cb = PyCFunction_New(&future_cb_def, (PyObject *)w);
    if (cb) {
        Py_XSETREF(w->value, cb);
        r = PyObject_CallMethod(w->target, "add_done_callback", "O", cb);
        Py_XDECREF(r);
    }
    if (!cb || !r) {
        ua_wait_release(w);
        Py_DECREF(parked);
        w->state = 0xff;
        return NULL;
    }
    return parked;
}

/* The task was cancelled: so is the future, if it has not started. */
static void future_thrown(WaitObject *w)
{
    if (w->state == 1 && w->target) {
        PyObject *r = PyObject_CallMethod(w->target, "cancel", NULL);
        if (!r)
            PyErr_WriteUnraisable(w->target);
        Py_XDECREF(r);
    }
    Py_CLEAR(w->value);
}

/* A Task (on loop) awaiting fut. */
static PyObject *wrap(LoopObject *loop, PyObject *fut)
{
    WaitObject *w = ua_wait_new(W_FUTURE, fut);
    if (!w)
        return NULL;
    PyObject *t = ua_v3_create_task(loop, (PyObject *)w);
    Py_DECREF(w);
    return t;
}

/* ---- the default executor ----------------------------------------------------- */

PyObject *ua_v3_default_executor(LoopObject *loop)
{
    if (!loop->executor) {
        if (loop->closed) {
            PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
            return NULL;
        }
        if (import_futures() < 0)
            return NULL;
        PyObject *kw = Py_BuildValue("{s:s}", "thread_name_prefix", "asyncio");
        PyObject *args = kw ? PyTuple_New(0) : NULL;
        PyObject *e = args ? PyObject_Call(ThreadPoolExecutor, args, kw) : NULL;
        Py_XDECREF(args);
        Py_XDECREF(kw);
        if (!e)
            return NULL;
        if (loop->executor)   /* made meanwhile (the call ran Python code) */
            Py_DECREF(e);
        else
            loop->executor = e;
    }
    return Py_NewRef(loop->executor);
}

PyObject *ua_v3_loop_set_default_executor(LoopObject *self, PyObject *executor)
{
    if (import_futures() < 0)
        return NULL;
    int ok = PyObject_IsInstance(executor, ThreadPoolExecutor);
    if (ok <= 0) {
        if (!ok)
            PyErr_SetString(PyExc_TypeError, "executor must be ThreadPoolExecutor");
        return NULL;
    }
    Py_XSETREF(self->executor, Py_NewRef(executor));
    Py_RETURN_NONE;
}

/* close(): as CPython's, the default executor is shut down without waiting
 * for its threads. */
PyObject *ua_v3_loop_close(LoopObject *self, PyObject *unused)
{
    PyObject *r = PyObject_CallOneArg(base_close, (PyObject *)self);
    if (!r)
        return NULL;
    PyObject *e = self->executor;
    self->executor = NULL;
    if (e) {
        Py_DECREF(r);
        r = PyObject_CallMethod(e, "shutdown", "O", Py_False);
        Py_DECREF(e);
        if (!r)
            return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

PyObject *ua_v3_loop_run_in_executor(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "run_in_executor() takes an executor, a function and its arguments");
        return NULL;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "the event loop is closed");
        return NULL;
    }
    if (ua_loop_check_thread(self) < 0)
        return NULL;
    PyObject *executor = args[0] == Py_None ? ua_v3_default_executor(self) : Py_NewRef(args[0]);
    if (!executor)
        return NULL;
    PyObject *submit = PyObject_GetAttrString(executor, "submit");
    Py_DECREF(executor);
    if (!submit)
        return NULL;
    PyObject *fut = PyObject_Vectorcall(submit, args + 1, (size_t)(nargs - 1), NULL);
    Py_DECREF(submit);
    if (!fut)
        return NULL;
    PyObject *t = wrap(self, fut);
    Py_DECREF(fut);
    return t;
}

/* ---- module functions ------------------------------------------------------------ */

static PyObject *mod_wrap_future(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"future", "loop", NULL};
    PyObject *fut, *loop_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$O:wrap_future", kwlist, &fut, &loop_arg))
        return NULL;
    if (Py_IS_TYPE(fut, &Task_Type))
        return Py_NewRef(fut);   /* already ours */
    if (import_futures() < 0)
        return NULL;
    int ok = PyObject_IsInstance(fut, ConcurrentFuture);
    if (ok <= 0) {
        if (!ok)
            PyErr_Format(PyExc_TypeError, "concurrent.futures.Future is expected, got %R", fut);
        return NULL;
    }
    if (loop_arg != Py_None && !PyObject_TypeCheck(loop_arg, &V3Loop_Type)) {
        PyErr_Format(PyExc_TypeError, "wrap_future(): loop must be a uasyncio.v3 Loop, not %.100s",
                     Py_TYPE(loop_arg)->tp_name);
        return NULL;
    }
    LoopObject *loop = loop_arg != Py_None ? (LoopObject *)Py_NewRef(loop_arg) : ua_v3_loop();
    if (!loop)
        return NULL;
    PyObject *t = wrap(loop, fut);
    Py_DECREF(loop);
    return t;
}

static PyObject *mod_to_thread(PyObject *m, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) < 1) {
        PyErr_SetString(PyExc_TypeError, "to_thread() missing 1 required positional argument: 'func'");
        return NULL;
    }
    PyObject *fargs = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    PyObject *kw = fargs ? (kwds ? PyDict_Copy(kwds) : PyDict_New()) : NULL;
    PyObject *call = kw ? PyTuple_Pack(3, PyTuple_GET_ITEM(args, 0), fargs, kw) : NULL;
    Py_XDECREF(fargs);
    Py_XDECREF(kw);
    if (!call)
        return NULL;
    WaitObject *w = ua_wait_new(W_FUTURE, NULL);
    if (!w) {
        Py_DECREF(call);
        return NULL;
    }
    w->value = call;
    return (PyObject *)w;
}

static PyMethodDef funcs[] = {
    {"wrap_future", (PyCFunction)(void (*)(void))mod_wrap_future, METH_VARARGS | METH_KEYWORDS,
     "wrap_future(future, *, loop=None): a Task that ends with the concurrent.futures.Future "
     "(its result, exception or cancel); cancelling the Task cancels the future."},
    {"to_thread", (PyCFunction)(void (*)(void))mod_to_thread, METH_VARARGS | METH_KEYWORDS,
     "to_thread(func, /, *args, **kwargs): awaitable: func(*args, **kwargs) in the loop's default "
     "executor, in a copy of the current context; its result."},
    {NULL},
};

int ua_v3_executor_ready(PyObject *m)
{
    ua_wait_kinds[W_FUTURE].next = future_next;
    ua_wait_kinds[W_FUTURE].thrown = future_thrown;
    if (!(base_close = PyObject_GetAttrString((PyObject *)&Loop_Type, "close")))
        return -1;
    return PyModule_AddFunctions(m, funcs);
}
