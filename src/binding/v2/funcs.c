/* uasyncio 2.0's module functions beyond the loop's own (uasyncio.core):
 * get_event_loop and the default loop, sleep, sleep_ms, cancel, wait_for,
 * wait_for_ms, coroutine, ensure_future, Task; and the TimeoutError of
 * wait_for(). uasyncio/core.py and uasyncio/__init__.py re-export them. */
#include "internal.h"

PyObject *ua_TimeoutError;
static LoopObject *default_loop;
static PyObject *types_coroutine;

/* ---- the default loop ------------------------------------------------------- */

static LoopObject *get_default_loop(void)
{
    if (!default_loop || default_loop->closed) {
        LoopObject *loop = (LoopObject *)PyObject_CallNoArgs((PyObject *)&PollLoop_Type);
        if (!loop)
            return NULL;
        Py_XSETREF(default_loop, loop);
    }
    return (LoopObject *)Py_NewRef(default_loop);
}

/* The loop that holds coro as a task: the running one first, then any. */
static LoopObject *loop_of(PyObject *coro)
{
    LoopObject *running = ua_running_loop_get();
    if (running && ua_loop_find(running, coro))
        return running;
    for (LoopObject *l = ua_all_loops; l; l = l->next_loop)
        if (ua_loop_find(l, coro))
            return l;
    return NULL;
}

/* ---- module functions ------------------------------------------------------ */

static PyObject *mod_get_event_loop(PyObject *m, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"runq_len", "waitq_len", NULL};
    Py_ssize_t runq_len = 16, waitq_len = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn:get_event_loop", kwlist, &runq_len, &waitq_len))
        return NULL;
    return (PyObject *)get_default_loop();
}

/* sleep(secs), sleep_ms(ms): a SleepMs for the delay. */
static PyObject *mod_sleep(PyObject *m, PyObject *secs)
{
    int32_t ms;
    return ua_delay_from_secs(secs, &ms, "sleep") < 0 ? NULL : ua_sleep_ms_new(ms);
}

static PyObject *mod_sleep_ms(PyObject *m, PyObject *ms_obj)
{
    int32_t ms;
    return ua_delay_from_ms(ms_obj, &ms, "sleep_ms") < 0 ? NULL : ua_sleep_ms_new(ms);
}

static int coro_finished(PyObject *coro)
{
    const char *attr = PyCoro_CheckExact(coro) ? "cr_frame" : PyGen_Check(coro) ? "gi_frame" : NULL;
    if (!attr)
        return 0;
    PyObject *frame = PyObject_GetAttrString(coro, attr);
    if (!frame)
        return -1;
    int done = frame == Py_None;
    Py_DECREF(frame);
    return done;
}

/* The object coro awaits (yields from) now, or NULL. */
static PyObject *awaited_by(PyObject *coro)
{
    PyObject *inner = ua_wait_for_inner(coro);
    if (inner)
        return Py_NewRef(inner);
    const char *attr = PyCoro_CheckExact(coro) ? "cr_await" : PyGen_Check(coro) ? "gi_yieldfrom" : NULL;
    PyObject *x = attr ? PyObject_GetAttrString(coro, attr) : NULL;
    if (!x)
        PyErr_Clear();
    if (x == Py_None)
        Py_CLEAR(x);
    return x;
}

/* Cancel owner's task on l (held meanwhile): 1, or -1 on error. */
static int cancel_owner(LoopObject *l, PyObject *owner, PyObject *exc)
{
    Py_INCREF(owner);
    Py_INCREF(l);
    int rc = ua_loop_cancel_coro(l, owner, exc);
    Py_DECREF(l);
    Py_DECREF(owner);
    return rc < 0 ? -1 : 1;
}

/* The first of top's await chain (top, what it awaits, ...) that match()
 * takes, a new reference; NULL if none in the first 1000. */
static PyObject *find_in_chain(PyObject *top, int (*match)(PyObject *x, void *arg), void *arg)
{
    PyObject *x = Py_NewRef(top);
    for (int depth = 0; x && depth < 1000; depth++) {
        if (match(x, arg))
            return x;
        PyObject *next = awaited_by(x);
        Py_DECREF(x);
        x = next;
    }
    Py_XDECREF(x);
    return NULL;
}

static int is_sync_waiter(PyObject *x, void *unused)
{
    PyObject *task;
    LoopObject *loop;
    return ua_sync_waiter(x, &task, &loop);
}

/* A task parked in a Queue or Lock is known to the operation it waits in,
 * at the end of its await chain: follow the chain down from coro (O(depth),
 * not O(tasks)). 1 if cancelled there, 0 if coro waits elsewhere. */
static int cancel_through_waiter(PyObject *coro, PyObject *exc)
{
    PyObject *x = find_in_chain(coro, is_sync_waiter, NULL);
    if (!x)
        return 0;
    PyObject *task;
    LoopObject *loop;
    ua_sync_waiter(x, &task, &loop);
    int rc = cancel_owner(loop, task, exc);
    Py_DECREF(x);
    return rc;
}

/* Whether coro is top or in its await chain. */
static int is_same(PyObject *x, void *coro)
{
    return x == coro;
}

static int in_chain(PyObject *top, void *coro)
{
    PyObject *x = find_in_chain(top, is_same, coro);
    Py_XDECREF(x);
    return x != NULL;
}

/* A coroutine awaited inside a task is cancelled, as in 2.0, through that
 * task: the exception travels down its await chain to coro. A v3 Task's
 * coroutine, or one awaited inside it, is reached through the Task (its
 * owner), never by coroutine. O(tasks), but only for coroutines that are
 * not 2.0 tasks themselves. */
static int cancel_through_task(PyObject *coro, PyObject *exc)
{
    for (LoopObject *l = ua_all_loops; l; l = l->next_loop) {
        PyObject *owner = ua_loop_find_task(l, in_chain, coro);
        if (owner)
            return cancel_owner(l, owner, exc);
    }
    return 0;
}

static PyObject *mod_cancel(PyObject *m, PyObject *coro)
{
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "cancel() expects a coroutine, not %.100s", Py_TYPE(coro)->tp_name);
        return NULL;
    }
    PyObject *exc = PyObject_CallNoArgs(ua_CancelledError);
    if (!exc)
        return NULL;
    int rc = -1;
    LoopObject *loop = loop_of(coro);
    if (loop) {
        Py_INCREF(loop);
        rc = ua_loop_cancel_coro(loop, coro, exc);
        Py_DECREF(loop);
        goto done;
    }
    /* Not a task: awaited inside one (then cancelled through it, as 2.0
     * delivers it), parked after yielding False, or not scheduled yet (then
     * scheduled, so the exception is raised in it now). */
    int finished = coro_finished(coro);
    if (finished)
        rc = finished < 0 ? -1 : 0;
    else if ((rc = cancel_through_waiter(coro, exc)) == 0 && (rc = cancel_through_task(coro, exc)) == 0) {
        LoopObject *running = ua_running_loop_get();
        loop = running ? (LoopObject *)Py_NewRef(running) : get_default_loop();
        rc = loop ? ua_loop_cancel_coro(loop, coro, exc) : -1;
        Py_XDECREF(loop);
    }
done:
    Py_DECREF(exc);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* wait_for(coro, secs) and wait_for_ms(coro, ms) */
static PyObject *wait_for_delay(PyObject *const *args, Py_ssize_t nargs, const char *name,
                                int (*delay)(PyObject *, int32_t *, const char *))
{
    int32_t ms;
    if (!ua_check_nargs(name, nargs, 2) || delay(args[1], &ms, name) < 0)
        return NULL;
    return ua_wait_for_new(args[0], ms);
}

static PyObject *mod_wait_for_ms(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return wait_for_delay(args, nargs, "wait_for_ms", ua_delay_from_ms);
}

static PyObject *mod_wait_for(PyObject *m, PyObject *const *args, Py_ssize_t nargs)
{
    return wait_for_delay(args, nargs, "wait_for", ua_delay_from_secs);
}

static PyObject *mod_coroutine(PyObject *m, PyObject *f)
{
    /* Makes a generator function awaitable from async def (types.coroutine);
     * an async def function comes back as it is. */
    return PyObject_CallOneArg(types_coroutine, f);
}

static LoopObject *loop_arg(PyObject *loop)
{
    if (!loop || loop == Py_None)
        return get_default_loop();
    if (!PyObject_TypeCheck(loop, &Loop_Type)) {
        PyErr_Format(PyExc_TypeError, "loop must be an EventLoop, not %.100s", Py_TYPE(loop)->tp_name);
        return NULL;
    }
    return (LoopObject *)Py_NewRef(loop);
}

static PyObject *schedule_on(PyObject *args, PyObject *kwds, const char *fmt, int return_coro)
{
    static char *kwlist[] = {"coro", "loop", NULL};
    PyObject *coro, *loop_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &coro, &loop_obj))
        return NULL;
    if (!ua_is_coroutine(coro)) {
        PyErr_Format(PyExc_TypeError, "expected a coroutine or a generator, not %.100s",
                     Py_TYPE(coro)->tp_name);
        return NULL;
    }
    LoopObject *loop = loop_arg(loop_obj);
    if (!loop)
        return NULL;
    int rc = ua_loop_check_thread(loop) < 0 ? -1 : ua_loop_call_soon(loop, coro, NULL);
    Py_DECREF(loop);
    if (rc < 0)
        return NULL;
    return Py_NewRef(return_coro ? coro : Py_None);
}

static PyObject *mod_ensure_future(PyObject *m, PyObject *args, PyObject *kwds)
{
    return schedule_on(args, kwds, "O|O:ensure_future", 1);
}

static PyObject *mod_Task(PyObject *m, PyObject *args, PyObject *kwds)
{
    return schedule_on(args, kwds, "O|O:Task", 0);
}

static PyMethodDef v2_functions[] = {
    {"get_event_loop", (PyCFunction)(void (*)(void))mod_get_event_loop, METH_VARARGS | METH_KEYWORDS,
     "get_event_loop(runq_len=16, waitq_len=16): the process-wide loop."},
    {"sleep", mod_sleep, METH_O, "sleep(secs): awaitable that sleeps."},
    {"sleep_ms", mod_sleep_ms, METH_O, "sleep_ms(ms): awaitable that sleeps."},
    {"cancel", mod_cancel, METH_O, "cancel(coro): raise CancelledError in coro now."},
    {"wait_for_ms", (PyCFunction)(void (*)(void))mod_wait_for_ms, METH_FASTCALL,
     "wait_for_ms(coro, ms): await coro in this task; TimeoutError after ms."},
    {"wait_for", (PyCFunction)(void (*)(void))mod_wait_for, METH_FASTCALL,
     "wait_for(coro, secs): await coro in this task; TimeoutError after secs."},
    {"coroutine", mod_coroutine, METH_O, "Make a generator function awaitable from async def."},
    {"ensure_future", (PyCFunction)(void (*)(void))mod_ensure_future, METH_VARARGS | METH_KEYWORDS,
     "ensure_future(coro, loop=None): schedule coro; returns coro."},
    {"Task", (PyCFunction)(void (*)(void))mod_Task, METH_VARARGS | METH_KEYWORDS,
     "Task(coro, loop=None): schedule coro."},
    {NULL},
};

/* Closed at interpreter exit with v3's (module.c). */
LoopObject *ua_v2_default_loop_borrowed(void)
{
    return default_loop;
}

int ua_v2_ready(PyObject *m)
{
    PyObject *types = PyImport_ImportModule("types");
    types_coroutine = types ? PyObject_GetAttrString(types, "coroutine") : NULL;
    Py_XDECREF(types);
    if (!types_coroutine)
        return -1;
    ua_TimeoutError = PyErr_NewExceptionWithDoc("uasyncio.core.TimeoutError",
                                                "Raised in a task whose wait_for() timed out.",
                                                ua_CancelledError, NULL);
    if (!ua_TimeoutError || PyModule_AddObjectRef(m, "TimeoutError", ua_TimeoutError) < 0)
        return -1;
    if (ua_waitfor_ready(m) < 0 || ua_sync_ready(m) < 0)
        return -1;
    return PyModule_AddFunctions(m, v2_functions);
}
